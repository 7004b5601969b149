"""When the gateway publishes a device's state: past the point's deadband, and at the heartbeat.

The environment sensor's CO2 point has a deadband of 10 ppm (devices/profiles/envsensor.yaml). The
sensor is polled every 0.1 s, the heartbeat is 3 s: a quiet phase of a few polls is far from the
heartbeat, and the heartbeat itself is measured on the event loop's clock at the probe.
"""

from __future__ import annotations

import asyncio

from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, tuned_site
from tests.support.wait import eventually

HEARTBEAT_S = 3.0
POLL_S = 0.1
TOPIC = "bcc/env_front"
INPUT_REGISTERS = 4  # Modbus function code reading the sensor's values


async def test_deadband_holds_small_changes_and_heartbeat_republishes(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    sensor = room_sim.device("env_front")
    assert sensor.profile.point("co2").deadband == 10
    site = tuned_site(room_sim.site_for_clients(), ["env_front"], {"env_front": {"default": POLL_S}})
    loop = asyncio.get_running_loop()

    async def polls_after(t: float, n: int) -> None:
        """Wait until the gateway has read the sensor's values ``n`` times after loop time ``t``."""

        def done() -> bool:
            reads = [r for r in sensor.reads if r.function_code == INPUT_REGISTERS and r.address == 0]
            return sum(1 for r in reads if r.time > t) >= n

        await eventually(done, timeout=5, step=0.02, what=f"{n} polls of env_front")

    async with (
        probe(mosquitto) as p,
        running_gateway(gateway_config(site, mosquitto, heartbeat_s=HEARTBEAT_S)),
    ):
        co2 = (await p.wait_for(TOPIC, timeout=10))["co2"]  # the first poll: the next heartbeat is 3 s away
        mark = p.mark()
        started = loop.time()

        # Inside the deadband, also when small steps add up to the deadband itself: nothing published.
        for value in (co2 + 6, co2 + 9, co2 - 10, co2 + 10):
            sensor.set_point("co2", value)
            await polls_after(loop.time(), 3)
        assert loop.time() - started < HEARTBEAT_S - 0.5, "quiet phase too slow to tell from a heartbeat"
        assert p.all(TOPIC, since=mark) == [], "published a change within the deadband"

        # Past it: published at the next poll, with the device's value.
        sensor.set_point("co2", co2 + 11)
        changed_at = loop.time()
        state = await p.wait_for(TOPIC, lambda s: s["co2"] == co2 + 11, since=mark, timeout=HEARTBEAT_S)
        [(arrived, _)] = p.timed(TOPIC, since=mark)
        assert arrived - changed_at < 1.0, f"change published after {arrived - changed_at:.2f} s"

        # Unchanged: published again at the heartbeat, same values.
        mark = p.mark()
        beat = await p.wait_for(TOPIC, since=mark, timeout=2 * HEARTBEAT_S)
        [(beat_at, _)] = p.timed(TOPIC, since=mark)
        assert {k: v for k, v in beat.items() if k != "ts"} == {k: v for k, v in state.items() if k != "ts"}
        gap = beat_at - arrived
        assert HEARTBEAT_S - POLL_S <= gap <= HEARTBEAT_S + 3 * POLL_S + 0.3, f"heartbeat after {gap:.2f} s"
