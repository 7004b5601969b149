"""Synthetic sites for scale runs: N Modbus TCP devices, each with T holding registers, each on its own
endpoint (the workload of EMQX Neuron's published benchmark: 500 devices x 30 tags every second).

Used by ``bcc bench poll``, the reduced scale test, and ``python -m simulators --synthetic N``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import yaml

from devices.loader import LoadedSite, site_from_dict
from devices.models import DeviceProfile
from simulators.site import SiteSimulator

PROFILE_MODEL = "synthetic"


def profile_dict(tags: int, interval_s: float = 1.0) -> dict[str, Any]:
    """T consecutive uint16 holding registers (one block read), publish on change with a deadband."""
    return {
        "model": PROFILE_MODEL,
        "manufacturer": "BCC",
        "label": {"id": "Perangkat sintetis", "en": "Synthetic device"},
        "source": "generated for scale benchmarks",
        "poll_groups": {"default": {"interval_s": interval_s}},
        "points": [
            {
                "key": f"tag_{i:03d}",
                "label": {"id": f"Tag {i}", "en": f"Tag {i}"},
                "table": "holding_register",
                "address": i,
                "type": "uint16",
                "unit": "1",
                "deadband": 2,
                # tag_000 takes commands (benchmarks time command round trips under polling load).
                "writable": i == 0,
            }
            for i in range(tags)
        ],
    }


def profile(tags: int, interval_s: float = 1.0) -> DeviceProfile:
    return DeviceProfile.model_validate(profile_dict(tags, interval_s))


def site_dict(devices: int, ports: list[int] | None = None, timeout_ms: int = 500) -> dict[str, Any]:
    ports = ports or [0] * devices
    return {
        "site": "synthetic",
        "buses": [
            {
                "name": f"bus_{i:04d}",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": ports[i],
                "timeout_ms": timeout_ms,
            }
            for i in range(devices)
        ],
        "devices": [
            {
                "id": f"dev_{i:04d}",
                "name": f"Device {i}",
                "profile": PROFILE_MODEL,
                "bus": f"bus_{i:04d}",
                "unit": 1,
            }
            for i in range(devices)
        ],
    }


def loaded_site(devices: int, tags: int, interval_s: float = 1.0) -> LoadedSite:
    return site_from_dict(site_dict(devices), {PROFILE_MODEL: profile(tags, interval_s)})


def profile_yaml(tags: int, interval_s: float = 1.0) -> str:
    return yaml.safe_dump(profile_dict(tags, interval_s), sort_keys=False)


async def churn(sim: SiteSimulator, fraction: float, period_s: float = 1.0, seed: int = 1) -> None:
    """Every period, change ``fraction`` of all registers by a random step (some past the deadband)."""
    rng = random.Random(seed)
    devices = list(sim.devices.values())
    while True:
        await asyncio.sleep(period_s)
        for dev in devices:
            readonly = [p.address for p in dev.profile.points if not p.writable]
            for _ in range(max(1, round(len(readonly) * fraction))):
                address = rng.choice(readonly)
                old = dev.get_registers("holding_register", address, 1)[0]
                dev.set_registers("holding_register", address, [(int(old) + rng.randint(-5, 5)) % 65536])


# Past the profile's deadband (2), so every change is a new value the gateway must publish.
CHANGE_STEP = 3


# change_all spreads one period's changes over this many slices: changing all 1,500 synthetic devices at
# once held the simulators' event loop for ~13 ms every second, and a timed command that met that slice
# measured the simulators, not the gateway (real devices do not all stall together).
CHANGE_SLICES = 50


async def change_all(sim: SiteSimulator, period_s: float = 1.0) -> None:
    """Every period, change every read-only register of every device by ``CHANGE_STEP`` (the peer
    harness's workload: every value changes every second). Writable registers keep what commands wrote,
    so the read-back of a timed command stays exact. Each device changes once per period, at its own
    place in it (``CHANGE_SLICES`` slices)."""
    loop = asyncio.get_running_loop()
    plans = []
    for dev in sim.devices.values():
        readonly = [p for p in dev.profile.points if not p.writable]
        addresses = sorted(p.address for p in readonly)
        if addresses:
            start = addresses[0]
            holding = all(p.table == "holding_register" for p in readonly)
            contiguous = holding and addresses[-1] - start + 1 == len(addresses)
            plans.append((dev, start, len(addresses), contiguous))
    slices = [plans[i::CHANGE_SLICES] for i in range(min(CHANGE_SLICES, len(plans)))]
    if not slices:  # no read-only register anywhere: nothing to change (and no loop without an await)
        return
    deadline = loop.time()
    while True:
        for part in slices:
            deadline += period_s / len(slices)
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            for dev, start, count, contiguous in part:
                if contiguous:  # one slice per device (the synthetic profile): 45,000 values/s stay cheap
                    old = dev.get_registers("holding_register", start, count)
                    new = [(int(v) + CHANGE_STEP) % 65536 for v in old]
                    dev.set_registers("holding_register", start, new)
                else:
                    for p in dev.profile.points:
                        if not p.writable and not p.table.is_bit:
                            v = int(dev.get_registers(p.table, p.address, 1)[0])
                            dev.set_registers(p.table, p.address, [(v + CHANGE_STEP) % 65536])
