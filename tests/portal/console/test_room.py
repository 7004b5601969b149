"""The console's in-memory room: what it keeps from MQTT and which command results it reports."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal.config import DEFAULT_SITE_FILE
from portal.db import make_engine, session_factory
from portal.services.room import LiveRoom, age_seconds, build_commands, load_plan


def room(tmp_path: Path) -> LiveRoom:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    return LiveRoom(load_plan(DEFAULT_SITE_FILE), session_factory(engine), lambda: datetime.now(UTC))


async def drain(queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    await asyncio.sleep(0)  # let call_soon_threadsafe deliveries run
    await asyncio.sleep(0)
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_state_availability_and_foreign_results(tmp_path: Path) -> None:
    r = room(tmp_path)
    r.attach(asyncio.get_running_loop())
    q = r.subscribe()

    def from_mqtt_thread() -> None:
        r.on_state("lights_a", {"relay_1": "ON", "ts": "2026-11-28T00:00:00.000Z"})
        r.on_state("not_in_the_site", {"x": 1})
        r.on_availability("lights_a", "online")
        r.on_bridge(r.plan.gateway, "online")
        # A console command sent by another worker: shown here too (its audit is the other worker's).
        r.on_response("lights_a", {"transaction": "console-00ff", "status": "ok", "state": {"relay_1": "ON"}})
        # Home Assistant's own command: not the console's business.
        r.on_response("lights_a", {"transaction": "ha-1", "status": "ok"})

    thread = threading.Thread(target=from_mqtt_thread)
    thread.start()
    thread.join()
    events = await drain(q)
    assert [k for k, _ in events] == ["state", "availability", "bridge", "command"]
    assert events[3][1]["transaction"] == "console-00ff" and events[3][1]["status"] == "ok"
    snap = r.snapshot()
    assert set(snap["states"]) == {"lights_a"} and snap["availability"] == {"lights_a": "online"}
    assert age_seconds(snap["states"]["lights_a"], datetime(2026, 11, 28, 0, 0, 5, tzinfo=UTC)) == 5.0
    assert age_seconds({"relay_1": "ON"}) is None
    r.unsubscribe(q)


async def test_a_response_for_another_device_does_not_settle_the_command(tmp_path: Path) -> None:
    r = room(tmp_path)
    r.attach(asyncio.get_running_loop())
    r.response_timeout_s = 30
    r.track("console-aaaa", "lights_a")
    r.on_response("lights_b", {"transaction": "console-aaaa", "status": "ok"})
    assert "console-aaaa" in r._pending


def test_circuits_action_groups_by_device() -> None:
    plan = load_plan(DEFAULT_SITE_FILE)
    cmds = build_commands(plan, "circuits", "lights_a.relay_1, lights_b.relay_2,lights_a.relay_3", "OFF")
    assert [(c.device, c.payload) for c in cmds] == [
        ("lights_a", {"relay_1": "OFF", "relay_3": "OFF"}),
        ("lights_b", {"relay_2": "OFF"}),
    ]


async def test_a_building_whose_bridge_is_down_shows_offline_and_owns_its_devices(tmp_path: Path) -> None:
    """A gateway behind a WAN keeps ``online`` as its retained state during a cut (its last will lives on
    the building's broker); the bridge's notification ``0`` on ``bcc/bridge/<gw>/link`` makes the
    console show it offline, and its devices' commands are answered at once (docs/mqtt.md)."""
    r = room(tmp_path)
    r.attach(asyncio.get_running_loop())
    q = r.subscribe()
    gw = r.plan.gateway
    r.on_bridge(gw, "online")
    r.on_inventory(gw, b'{"devices": ["lights_a"]}')
    r.on_link(gw, "1")
    assert r.snapshot()["bridge"] == "online" and r.offline_owner("lights_a") is None
    r.on_link(gw, "0")  # the bridge's last will on the center's broker
    snap = r.snapshot()
    assert snap["bridge"] == "offline" and snap["gateways"] == {gw: "offline"}
    assert r.offline_owner("lights_a") == gw
    r.on_link(gw, "1")  # reconnected; the gateway's retained state never changed
    assert r.snapshot()["bridge"] == "online" and r.offline_owner("lights_a") is None
    events = await drain(q)
    assert [d["value"] for k, d in events if k == "bridge"] == ["online", "offline", "online"]
    r.unsubscribe(q)
