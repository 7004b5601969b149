"""The console knows which gateway owns each device from the retained inventories (docs/mqtt.md
"Fleet"): a command to a device whose gateway is offline is answered ``device_unavailable`` at once,
naming that gateway, and is never published. Real Mosquitto, simulators, gateway and portal."""

from __future__ import annotations

import time
from pathlib import Path

from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway
from tests.support.stack import Console, portal_stack
from tests.support.wait import eventually


async def _bridge(c: Console, value: str) -> bool:
    snap = await c.state()
    return bool(snap["bridge"] == value and snap["gateways"].get("bcc_room") == value)


async def test_a_command_to_a_device_whose_gateway_is_offline_is_answered_at_once(
    tmp_path: Path, sqlite_template: Path, mosquitto: MosquittoProcess, room_sim: SiteSimulator
) -> None:
    async with (
        portal_stack(tmp_path, sqlite_template, mosquitto, None) as stack,
        stack.console("operator") as c,
        probe(mosquitto, role="readonly", subscribe="bcc/+/set") as commands,
    ):
        async with running_gateway(gateway_config(room_sim.site_for_clients(), mosquitto)):
            await eventually(lambda: _bridge(c, "online"), 10, what="the gateway online on the console")
            await c.open()
            [cmd] = await c.send("circuit", "lights_a.relay_3", "ON")
            assert (await c.result(cmd["transaction"]))["status"] == "ok"
            # As published: with its send time, which the gateway requires (epoch seconds).
            sent = await commands.wait_for(
                "bcc/lights_a/set", lambda m: m["transaction"] == cmd["transaction"]
            )
            assert sent["relay_3"] == "ON" and abs(sent["ts"] - time.time()) < 5, sent
        # The gateway stopped: its retained state says offline, its inventory still owns lights_a.
        await eventually(lambda: _bridge(c, "offline"), 10, what="the gateway offline on the console")
        mark = commands.mark()
        async with c.listening():
            started = time.monotonic()
            [cmd] = await c.send("circuit", "lights_a.relay_4", "ON")
            result = await c.result(cmd["transaction"], timeout=2)
            elapsed = time.monotonic() - started
            assert result["status"] == "device_unavailable", result
            assert "'bcc_room'" in result["error"] and "offline" in result["error"], result
            assert elapsed < 1.0, elapsed  # at once, not after the console's 5 s response time
            # The console's live stream carries the same answer.
            await eventually(
                lambda: any(k == "command" and d["transaction"] == cmd["transaction"] for k, d in c.events)
            )
        assert commands.all("bcc/lights_a/set", since=mark) == []  # never published
        assert room_sim.device("lights_a").get_point("relay_4") is False
