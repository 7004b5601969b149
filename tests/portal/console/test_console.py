"""The operator console end to end: real Mosquitto, the demo room's simulators, the gateway and the portal.

A command is confirmed only by the gateway's response (read back from the device); a stuck relay shows the
failed read-back, a dead device shows unavailable, and every command is in the audit with its result.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from mosquitto import MosquittoProcess
from portal.config import DEFAULT_SITE_FILE
from portal.runtime import runtime_of
from portal.services.room import load_plan
from tests.support.stack import Console, Stack, portal_stack
from tests.support.wait import eventually


def test_plan_of_the_demo_room() -> None:
    plan = load_plan(DEFAULT_SITE_FILE)
    assert [f"{c.device}.{c.point}" for c in plan.circuits] == [
        f"lights_{m}.relay_{i}" for m in "ab" for i in range(1, 9)
    ]
    assert [c.label_en for c in plan.circuits][8] == "Circuit 9"
    assert [w.device for w in plan.walls] == ["wall"]
    assert [d.power for d in plan.displays] == [f"display_{n}_power" for n in range(1, 8)]
    assert plan.walls[0].layouts == ("wide", "split_2", "split_3", "split_4", "split_7")
    assert [s.device for s in plan.sensors] == ["env_front", "env_back"]
    assert [t.point for t in plan.sensors[0].tiles] == ["temperature", "humidity", "co2", "illuminance"]
    assert [m.device for m in plan.meters] == ["meter_main"]
    assert [(t.point, t.unit) for t in plan.meters[0].tiles] == [
        ("power_total", "W"),
        ("energy_import", "kWh"),
    ]


async def test_round_trip_switches_the_coil_and_is_audited(stack: Stack) -> None:
    assert stack.sim is not None
    async with stack.console("operator") as c:
        await eventually(lambda: _online(c, "lights_a"))
        html = await c.open()
        assert _shown(html, "lights_a", "relay_3") == "OFF"  # rendered without JavaScript
        async with c.listening():
            [cmd] = await c.send("circuit", "lights_a.relay_3", "ON")
            assert cmd["device"] == "lights_a"
            result = await c.result(cmd["transaction"])
            assert result["status"] == "ok", result
            assert result["readback"] == {"relay_3": "ON"}
            assert stack.sim.device("lights_a").get_point("relay_3") is True
            # The SSE stream carried the new state before the confirmation, never the other way round.
            await eventually(lambda: any(k == "command" for k, _ in c.events))
            kinds = [
                (k, d)
                for k, d in c.events
                if (k == "state" and d["device"] == "lights_a" and d["state"].get("relay_3") == "ON")
                or (k == "command" and d["transaction"] == cmd["transaction"])
            ]
            assert [k for k, _ in kinds][:2] == ["state", "command"], kinds
            assert kinds[1][1]["status"] == "ok"
        assert (await c.state())["states"]["lights_a"]["relay_3"] == "ON"
        page = (await c.http.get("/konsol")).text
        assert _shown(page, "lights_a", "relay_3") == "ON" and cmd["transaction"] in page
        audit = (await c.http.get("/konsol/audit", params={"status": "ok"})).text
        assert cmd["transaction"] in audit and "lights_a.relay_3 ON" in audit
        rows = list(csv.DictReader(io.StringIO((await c.http.get("/konsol/audit.csv")).text)))
        assert [(r["transaction"], r["status"], r["device"]) for r in rows] == [
            (cmd["transaction"], "ok", "lights_a")
        ]
        assert rows[0]["username"].startswith("operator_")
        assert (await c.http.get("/konsol/audit.csv", params={"status": "timeout"})).text.count("\n") == 1


async def test_all_lights_wall_and_layout(stack: Stack) -> None:
    assert stack.sim is not None
    async with stack.console("admin") as c:
        await eventually(lambda: _online(c, "wall", "lights_b"))
        await c.open()
        commands = await c.send("all_lights", "", "ON")
        assert sorted(x["device"] for x in commands) == ["lights_a", "lights_b"]
        for x in commands:
            assert (await c.result(x["transaction"]))["status"] == "ok"
        for device in ("lights_a", "lights_b"):
            assert all(stack.sim.device(device).get_point(f"relay_{i}") for i in range(1, 9))
        [wall] = await c.send("wall_power", "", "ON")
        assert (await c.result(wall["transaction"]))["status"] == "ok"
        [one] = await c.send("display", "display_4_power", "OFF")
        assert (await c.result(one["transaction"]))["status"] == "ok"
        assert stack.sim.device("wall").get_point("display_4_power") is False
        assert stack.sim.device("wall").get_point("display_5_power") is True
        [lay] = await c.send("layout", "wall", "split_4")
        assert (await c.result(lay["transaction"]))["status"] == "ok"
        assert stack.sim.device("wall").get_point("layout") == "split_4"
        await eventually(lambda: _value(c, "wall", "layout", "split_4"))
        for action, target, value in [
            ("layout", "wall", "split_9"),
            ("circuit", "lights_a.relay_9", "ON"),
            ("circuit", "lights_a.device_address", "ON"),
            ("display", "display_1_on", "ON"),
            ("circuit", "lights_a.relay_1", "TOGGLE"),
            ("reboot", "", "ON"),
        ]:
            r = await c.http.post(
                "/konsol/perintah",
                data={"csrf_token": c.csrf, "action": action, "target": target, "value": value},
            )
            assert r.status_code == 400, (action, target, value)
        rows = (await c.http.get("/konsol/audit.csv")).text.strip().splitlines()
        assert len(rows) == 1 + 5  # header + the five commands sent; refused actions never reach MQTT


async def test_stuck_relay_shows_failed_readback(stack: Stack) -> None:
    assert stack.sim is not None
    stack.sim.device("lights_b").set_fault("stuck")
    async with stack.console() as c:
        await eventually(lambda: _online(c, "lights_b"))
        await c.open()
        [cmd] = await c.send("circuit", "lights_b.relay_1", "ON")
        result = await c.result(cmd["transaction"])
        assert result["status"] == "failed_readback", result
        assert result["readback"] == {"relay_1": "OFF"}
        assert (await c.state())["states"]["lights_b"]["relay_1"] == "OFF"
        page = (await c.http.get("/konsol")).text
        assert "gagal: perangkat melaporkan nilai lain" in page
        audit = (await c.http.get("/konsol/audit", params={"status": "failed_readback"})).text
        assert cmd["transaction"] in audit


async def test_dead_device_shows_unavailable(stack: Stack) -> None:
    assert stack.sim is not None
    async with stack.console() as c:
        await eventually(lambda: _online(c, "lights_b"))
        stack.sim.device("lights_b").set_fault("no_answer")
        await eventually(lambda: _avail(c, "lights_b", "offline"), timeout=15)
        page = await c.open()
        assert 'class="avail offline" data-avail="lights_b">tidak tersedia' in page
        [cmd] = await c.send("circuit", "lights_b.relay_2", "ON")
        result = await c.result(cmd["transaction"])
        assert result["status"] == "device_unavailable", result
        assert stack.sim.device("lights_b").writes == []
        assert "gagal: perangkat tidak tersedia" in (await c.http.get("/konsol")).text


async def test_no_response_is_a_timeout_never_a_success(
    tmp_path: Path, sqlite_template: Path, mosquitto: MosquittoProcess
) -> None:
    """No gateway at all: the command stays pending, then times out; nothing claims it was done."""
    async with (
        portal_stack(tmp_path, sqlite_template, mosquitto, None, mqtt={"command_response_s": 0.5}) as s,
        s.console() as c,
    ):

        def connected() -> bool:
            commands = runtime_of(c.app).connections.commands
            return commands is not None and commands.connected.is_set()

        await eventually(connected, what="the console's MQTT client is connected")
        await c.open()
        [cmd] = await c.send("circuit", "lights_a.relay_1", "ON")
        assert (await c.status(cmd["transaction"]))["status"] == "pending"
        result = await c.result(cmd["transaction"])
        assert result["status"] == "timeout" and "no response" in result["error"]


def _shown(html: str, device: str, point: str) -> str:
    """The value the page shows for one point (server-rendered, as a browser without JavaScript sees it)."""
    match = re.search(rf'data-device="{device}" data-point="{point}" data-unit="[^"]*">([^<]*)<', html)
    assert match, (device, point)
    return match.group(1).strip()


async def _online(c: Console, *devices: str) -> bool:
    snap = await c.state()
    return all(snap["availability"].get(d) == "online" and d in snap["states"] for d in devices)


async def _avail(c: Console, device: str, value: str) -> bool:
    snap = await c.state()
    return bool(snap["availability"].get(device) == value and device in snap["states"])


async def _value(c: Console, device: str, point: str, value: str) -> bool:
    snap = await c.state()
    return bool(snap["states"].get(device, {}).get(point) == value)
