"""Bulk telemetry held while the broker is away survives a gateway restart (gateway.telemetry_spool_path).

The broker stops, the gateway keeps polling (every poll publishes: heartbeat 10 ms) and moves each
window's states to its spool file; the gateway is then killed (SIGKILL: no clean shutdown), the broker
comes back and a new gateway on the same file sends those states first, once each, and nothing that
was already sent before the outage.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from devices.loader import LoadedSite
from iot_gateway.bulk import spooled_states
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import Probe, gateway_config, probe, running_gateway, site_dict, tuned_site
from tests.support.paths import ROOT
from tests.support.wait import eventually

TOPIC = "bcc/bridge/bcc_room/telemetry"


def bulk_states(p: Probe) -> list[tuple[str, bytes]]:
    """Every (device, state JSON) in the bulk messages ``p`` received, in order of arrival."""
    out: list[tuple[str, bytes]] = []
    for body in p.all(TOPIC):
        out.extend((device, orjson.dumps(state)) for device, states in body.items() for state in states)
    return out


def lux(state: bytes) -> Any:
    return orjson.loads(state)["illuminance"]


def fast_sensor(sim: SiteSimulator, spool: Path, **more: Any) -> tuple[LoadedSite, dict[str, Any]]:
    """The front sensor alone, polled every 0.1 s, every poll published (heartbeat 10 ms), and the
    gateway settings of bulk telemetry with its pending states in ``spool``."""
    settings: dict[str, Any] = {
        "telemetry_batch_ms": 50,
        "telemetry_spool_path": str(spool),
        "heartbeat_s": 0.01,
        **more,
    }
    return tuned_site(sim.site_for_clients(), ["env_front"], {"env_front": {"default": 0.1}}), settings


async def test_pending_states_survive_a_killed_gateway_and_are_sent_once(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    spool = tmp_path / "gateway-telemetry.sqlite3"
    site, settings = fast_sensor(room_sim, spool)
    site_file = tmp_path / "site.yaml"
    # The first gateway takes the file from the command line (as the systemd unit passes it), the
    # second from its site settings.
    in_file = {k: v for k, v in settings.items() if k != "telemetry_spool_path"}
    site_file.write_text(yaml.safe_dump(site_dict(site, mosquitto, **in_file)), encoding="utf-8")
    env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("gateway"), "BCC_LOG_FORMAT": "json"}
    sensor = room_sim.device("env_front")
    log_path = tmp_path / "gateway.log"

    with log_path.open("wb") as log:
        argv = ["--site", str(site_file), "--telemetry-spool", str(spool)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bcc", "gateway", *argv, cwd=ROOT, env=env, stderr=log
        )
        try:
            async with probe(mosquitto, subscribe=TOPIC) as before:
                await eventually(
                    lambda: len(bulk_states(before)) >= 5, timeout=15, what="bulk telemetry flowing"
                )
            await mosquitto.stop()
            for value in (111, 222, 333, 444):
                sensor.set_point("illuminance", value)

                def spooled(value: int = value) -> bool:
                    return any(lux(s) == value for _, s in spooled_states(spool))

                await eventually(spooled, what=f"a state with illuminance {value} in the spool file")
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            print(log_path.read_text()[-3000:])  # shown on failure
    held = spooled_states(spool)
    assert {111, 222, 333, 444} <= {lux(s) for _, s in held}

    await mosquitto.start()
    async with probe(mosquitto, subscribe=TOPIC) as after:
        async with running_gateway(gateway_config(site, mosquitto, **settings)) as gw:
            await eventually(
                lambda: len(bulk_states(after)) > len(held), timeout=15, what="the held states sent"
            )
            await eventually(
                lambda: (
                    gw.telemetry is not None
                    and gw.telemetry.spool is not None
                    and gw.telemetry.spool.rows == 0
                )
            )
        sent = bulk_states(after)
    assert sent[: len(held)] == held, "the states held across the restart come first, in order"
    repeated = [s for s, n in Counter(sent).items() if n > 1]
    assert not repeated, f"sent twice after the restart: {repeated[:3]}"
    assert not set(sent) & set(bulk_states(before)), "states sent before the outage were sent again"
    assert spooled_states(spool) == []


async def test_beyond_the_bound_the_oldest_pending_states_are_dropped_and_counted(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    spool = tmp_path / "gateway-telemetry.sqlite3"
    site, settings = fast_sensor(room_sim, spool, telemetry_max_pending=10)
    sensor = room_sim.device("env_front")
    async with running_gateway(gateway_config(site, mosquitto, **settings)) as gw:
        await mosquitto.stop()
        dropped = gw.metrics.telemetry_dropped
        await eventually(
            lambda: dropped._value.get() >= 5, what="more than 15 states while the broker is away"
        )
        sensor.set_point("illuminance", 999)
        await eventually(lambda: any(lux(s) == 999 for _, s in spooled_states(spool)))
    counted = dropped._value.get()
    held = spooled_states(spool)
    assert len(held) == 10  # the bound, kept at the clean stop too
    assert counted >= 5
    times = [orjson.loads(s)["ts"] for _, s in held]
    assert times == sorted(times) and len(set(times)) == 10
    assert lux(held[-1][1]) == 999, "the newest states are kept"

    await mosquitto.start()
    async with (
        probe(mosquitto, subscribe=TOPIC) as after,
        running_gateway(gateway_config(site, mosquitto, **settings)),
    ):
        await eventually(lambda: len(bulk_states(after)) >= 10, timeout=15)
    assert bulk_states(after)[:10] == held
