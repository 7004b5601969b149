"""Polling never waits for the broker (iot_gateway.outbox).

The gateway reaches the broker through a relay that then cuts the link silently, as a dropped route
would: no RST, and the keepalive (60 s here) does not expire during the cut. A publish awaiting its
PUBACK would wait PUBLISH_TIMEOUT_S (5 s), and a poll awaiting its state's publish missed its slots.
While the link is cut, the simulated sensors change their temperature after every poll: the polls must
keep their deadlines (the gateway's own metrics and the simulator's read log), and once the link is back
the broker must hold each device's latest state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mosquitto import MosquittoProcess
from simulators.device import DeviceSim
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, tuned_site
from tests.support.tcprelay import TcpRelay
from tests.support.wait import eventually

DEVICES = ("env_front", "env_back")
POLL_S = 0.5
CUT_S = 4.0  # under the PUBACK timeout (5 s): the old code's first poll would still be waiting at the end


def polls_seen(dev: DeviceSim) -> int:
    """Polls the simulator answered (each poll reads input register 0 once)."""
    return sum(1 for r in dev.reads if r.address == 0 and r.function_code == 4)


async def test_polls_keep_their_deadlines_while_the_broker_link_is_silently_cut(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    site = tuned_site(room_sim.site_for_clients(), DEVICES, {d: {"default": POLL_S} for d in DEVICES})
    sims = {d: room_sim.device(d) for d in DEVICES}
    relay = TcpRelay(mosquitto.host, mosquitto.port)
    await relay.start()
    loop = asyncio.get_running_loop()
    config = gateway_config(site, mosquitto, {"url": relay.url, "keepalive_s": 60})
    try:
        async with running_gateway(config) as gw, probe(mosquitto, subscribe="bcc/+") as live:
            for d in DEVICES:
                await live.wait_for(f"bcc/{d}", timeout=10)
            reconnects = gw.metrics.mqtt_reconnects._value.get()
            polled = {d: gw.devices[d].polls_ok for d in DEVICES}
            relay.freeze()
            cut_at = loop.time()
            latest: dict[str, float] = {}
            step = 0
            # A new temperature after every poll of each device, for CUT_S: each poll reads a changed value.
            while loop.time() - cut_at < CUT_S:
                step += 1
                for d, sim in sims.items():
                    latest[d] = round(20.0 + step * 0.5 + (0.2 if d == "env_back" else 0.0), 1)
                    sim.set_point("temperature", latest[d])
                seen = {d: polls_seen(sim) for d, sim in sims.items()}

                def polled_again(seen: dict[str, int] = seen) -> bool:
                    return all(polls_seen(s) > seen[d] for d, s in sims.items())

                await eventually(
                    polled_again,
                    timeout=3 * POLL_S,
                    step=0.02,
                    what="every device polled again while the broker link is cut",
                )
            during = {d: gw.devices[d].polls_ok - polled[d] for d in DEVICES}
            missed = {d: gw.metrics.missed_deadlines.labels(d)._value.get() for d in DEVICES}
            waiting = gw.outbox.in_flight + gw.outbox.waiting
            relay.thaw()
            expected = CUT_S / POLL_S
            assert all(n >= expected - 2 for n in during.values()), (during, expected)
            assert missed == dict.fromkeys(DEVICES, 0.0), missed
            assert step >= expected - 2, step
            assert waiting > 0, "the states of the cut were never handed to the link"

            def latest_state(d: str) -> Any:
                return live.wait_for(f"bcc/{d}", lambda s: s["temperature"] == latest[d], timeout=10)

            for d in DEVICES:
                await latest_state(d)
            # The link came back without a reconnect: the states held in the relay went through in order.
            assert gw.metrics.mqtt_reconnects._value.get() == reconnects
        # A new subscriber gets each device's retained state: the latest one.
        async with probe(mosquitto, subscribe="bcc/+") as fresh:
            for d in DEVICES:
                state = await fresh.wait_for(f"bcc/{d}", timeout=5)
                assert state["temperature"] == latest[d], (d, state, latest[d])
    finally:
        await relay.close()
