"""``bcc alarms`` end to end: real Mosquitto with the project's ACL, the demo room's simulators with their
physics, the real gateway, and the alarm service with the shipped rules (delays shortened for the test).

The room overheats the way the simulator models it (all seven displays switched on through the gateway,
then an hour of the heat model), the high-temperature alarm is raised after its on-delay and is visible
retained on MQTT, an operator acknowledges it, it clears when the room cools; a device that stops
answering raises its offline alarm, and the service restarted in the middle of that alarm neither
raises it again nor loses it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway.alarms.config import AlarmsConfig, build_alarms_config
from iot_gateway.alarms.rules import rules_path_for
from iot_gateway.alarms.service import running_alarms
from iot_gateway.alarms.store import AlarmStore
from mosquitto import MosquittoProcess
from simulators import SiteSimulator, start_site
from tests.support.gateway import Probe, gateway_config, probe, running_gateway, site_dict, with_ts
from tests.support.wait import eventually

T = Topics()
HOT = "room_temperature_high.env_front"
WALL_OFFLINE = "device_offline.wall"
ON_DELAY_S = 2.0
DISPLAYS = range(1, 8)


def fast_rules(tmp_path: Path, **more: dict[str, Any]) -> Path:
    """The shipped rules with the delays this test waits for shortened (``more``: other rules' fields by
    rule id), and no daily summary."""
    raw = yaml.safe_load(rules_path_for(load_site(DEMO_SITE)).read_text(encoding="utf-8"))
    faster: dict[str, dict[str, Any]] = {
        "room_temperature_high": {"on_delay_s": ON_DELAY_S, "off_delay_s": 2},
        "device_offline": {"on_delay_s": 1, "off_delay_s": 1},
        "alarm_system_degraded": {"after_s": 0.1, "off_delay_s": 1},
        "reports_verification_overdue": {"on_delay_s": 0.5, "off_delay_s": 0.5},
        "recorder_offline": {"on_delay_s": 0.5, "off_delay_s": 0.5},
        "influxdb_unreachable": {"on_delay_s": 0.5, "off_delay_s": 0.5},
        **more,
    }
    for rule in raw["rules"]:
        rule.update(faster.get(rule["id"], {}))
    # no daily summary e-mail: whether one is due depends on the time of day the test runs
    raw["notify"] = {"daily_summary_to": []}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def alarms_config(sim: SiteSimulator, broker: MosquittoProcess, tmp_path: Path) -> AlarmsConfig:
    loaded = sim.site_for_clients()
    site = site_from_dict(site_dict(loaded, broker), loaded.profiles)
    env = {"BCC_MQTT_PASSWORD": broker.password("alarms")}
    return build_alarms_config(site, env, fast_rules(tmp_path), tmp_path / "alarms.sqlite3", instance="one")


async def command(p: Probe, txn: str, **cmd: Any) -> dict[str, Any]:
    mark = p.mark()
    await p.publish(T.alarm_commands, {**cmd, "transaction": txn})
    result: dict[str, Any] = await p.wait_for(
        T.alarm_results, lambda r: r.get("transaction") == txn, since=mark
    )
    return result


async def switch_displays(p: Probe, sim: SiteSimulator, on: bool, txn: str) -> None:
    value = "ON" if on else "OFF"
    points = {f"display_{n}_power": value for n in DISPLAYS}
    await p.publish(T.set("wall"), with_ts({**points, "transaction": txn}))
    answer = await p.wait_for(T.response("wall"), lambda r: r.get("transaction") == txn)
    assert answer["status"] == "ok", answer
    wall = sim.device("wall")
    await eventually(lambda: all(wall.get_point(f"display_{n}_on") is on for n in DISPLAYS))


async def event_of(p: Probe, alarm: str, kind: str, since: int = 0, timeout: float = 5.0) -> dict[str, Any]:
    """The first ``kind`` event (raised, cleared, acked, ...) of ``alarm`` on MQTT since ``since``."""
    found: dict[str, Any] = await p.wait_for(
        T.alarm_events, lambda e: e["alarm"] == alarm and e["event"] == kind, timeout=timeout, since=since
    )
    return found


def alarm_events(p: Probe, alarm: str, since: int = 0) -> list[str]:
    return [e["event"] for e in p.all(T.alarm_events, since) if e["alarm"] == alarm]


async def test_overheat_ack_cool_offline_and_restart(mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    sim = await start_site(load_site(DEMO_SITE), port=0, physics=True, physics_period_s=0.5, seed=20)
    config = alarms_config(sim, mosquitto, tmp_path)
    try:
        async with (
            running_gateway(gateway_config(sim.site_for_clients(), mosquitto, breaker_max_backoff_s=1.0)),
            probe(mosquitto, "operator", subscribe=T.everything) as p,
        ):
            async with running_alarms(config):
                # The room overheats: every display on, then an hour of the simulator's heat model.
                await switch_displays(p, sim, True, "heat")
                mark = p.mark()
                assert sim.physics is not None
                sim.physics.step(3600)

                def hot(s: Any) -> bool:
                    return isinstance(s, dict) and s.get("temperature", 0) > 27

                await p.wait_for(T.state("env_front"), hot, timeout=8, since=mark)
                crossed = time.monotonic()
                raised = await p.wait_for(
                    T.alarm_state(HOT),
                    lambda a: a["state"] == "active_unacked",
                    timeout=ON_DELAY_S + 3,
                    since=mark,
                )
                late = time.monotonic() - crossed
                assert ON_DELAY_S - 0.5 <= late <= ON_DELAY_S + 2, f"raised {late:.2f} s after the crossing"
                assert raised["severity"] == "high" and raised["value"] > 27 and raised["limit"] == 27
                assert raised["message"]["en"] == "Room temperature above 27 °C"

                # Visible retained to anyone who subscribes later (readonly: a wall or Grafana).
                async with probe(mosquitto, "readonly", subscribe=T.all_alarm_states) as late_reader:
                    seen = await late_reader.wait_for(T.alarm_state(HOT))
                    assert seen["state"] == "active_unacked"
                    assert all(m.retain for m in late_reader.messages)

                # Bad commands are refused with the reason; the operator acknowledges with a note.
                assert (await command(p, "bad-1", alarm=HOT, action="silence", by="siti"))["error"] == (
                    "'action' must be one of ack, shelve, unshelve"
                )
                nope = await command(p, "bad-2", alarm="nope.env_front", action="ack", by="siti")
                assert nope["status"] == "rejected" and "unknown alarm" in nope["error"]
                ok = await command(p, "ack-1", alarm=HOT, action="ack", by="siti", note="AC unit 2 restarted")
                assert ok == {"status": "ok", "transaction": "ack-1", "alarm": HOT, "action": "ack"}
                await p.wait_for(T.alarm_state(HOT), lambda a: a["state"] == "active_acked", since=mark)
                again = await command(p, "ack-2", alarm=HOT, action="ack", by="siti")
                assert "nothing to acknowledge" in again["error"]

                # The room cools: displays off, an hour of the model, back to normal.
                await switch_displays(p, sim, False, "cool")
                sim.physics.step(3600)
                await p.wait_for(T.alarm_state(HOT), lambda a: a["state"] == "normal", timeout=12, since=mark)
                # the state is published before the event of the same transition
                await event_of(p, HOT, "cleared", since=mark)
                events = [e for e in p.all(T.alarm_events, mark) if e["alarm"] == HOT]
                assert [e["event"] for e in events] == ["raised", "acked", "cleared"]
                assert (events[1]["who"], events[1]["note"]) == ("siti", "AC unit 2 restarted")
                raised = {e["alarm"] for e in p.all(T.alarm_events, mark) if e["event"] == "raised"}
                assert raised == {HOT, "room_temperature_high.env_back"}, (
                    "the room's other sensor, nothing else"
                )

                # A device stops answering: its offline alarm.
                sim.device("wall").set_fault("no_answer")
                await p.wait_for(T.availability("wall"), lambda v: v == "offline", timeout=15, since=mark)
                await p.wait_for(
                    T.alarm_state(WALL_OFFLINE), lambda a: a["state"] == "active_unacked", timeout=5
                )
                await event_of(p, WALL_OFFLINE, "raised")

            # Restarted in the middle of that alarm: still active, not raised again.
            assert await p.wait_for(T.alarm_service("one"), lambda s: s == "offline", since=mark) == "offline"
            restart = p.mark()
            async with running_alarms(config):
                still = await p.wait_for(T.alarm_state(WALL_OFFLINE), since=restart)
                assert still["state"] == "active_unacked"
                sim.device("wall").set_fault("none")
                await p.wait_for(
                    T.alarm_state(WALL_OFFLINE),
                    lambda a: a["state"] == "cleared_unacked",
                    timeout=10,
                    since=restart,
                )
                await event_of(p, WALL_OFFLINE, "cleared", since=restart)
                assert alarm_events(p, WALL_OFFLINE, restart) == ["cleared"]
    finally:
        await sim.stop()
    history = AlarmStore(config.database_url)
    try:
        assert [e["event"] for e in history.history(WALL_OFFLINE)] == ["raised", "cleared"]
        assert [e["event"] for e in history.history(HOT)] == ["raised", "acked", "cleared"]
    finally:
        history.close()


async def test_losing_the_broker_degrades_the_alarm_system_without_false_clears(
    mosquitto: MosquittoProcess, room_sim: SiteSimulator, tmp_path: Path
) -> None:
    """The broker restarts: nothing is cleared for what could not be seen, and back on line the
    evaluator raises "alarm system degraded", which clears and waits for an acknowledgement."""
    config = alarms_config(room_sim, mosquitto, tmp_path)
    degraded = "alarm_system_degraded.evaluator"
    async with (
        running_gateway(gateway_config(room_sim.site_for_clients(), mosquitto, breaker_max_backoff_s=1.0)),
        running_alarms(config) as service,
    ):
        async with probe(mosquitto, "operator", subscribe=T.everything) as p:
            room_sim.device("wall").set_fault("no_answer")
            await p.wait_for(
                T.alarm_state(WALL_OFFLINE), lambda a: a["state"] == "active_unacked", timeout=15
            )
        await mosquitto.stop()
        await eventually(lambda: not service.connected.is_set(), what="the service saw the broker go")
        await mosquitto.start()
        async with probe(mosquitto, "operator", subscribe=T.everything) as p:
            # The raise is an event; the retained state may already say cleared_unacked when it is
            # first published (raised and cleared within the second the publish waited for the broker:
            # seen about 1 run in 3), so the state is not where to look for it.
            raised = await event_of(p, degraded, "raised", timeout=15)
            assert raised["severity"] == "high" and raised["value"] >= 0.1
            assert (await p.wait_for(T.alarm_state(WALL_OFFLINE)))["state"] == "active_unacked"
            await p.wait_for(T.alarm_state(degraded), lambda a: a["state"] == "cleared_unacked", timeout=5)
            wall_events = [e["event"] for e in p.all(T.alarm_events) if e["alarm"] == WALL_OFFLINE]
            assert "cleared" not in wall_events, "no false clear"
            ok = await command(p, "seen", alarm=degraded, action="ack", by="siti", note="broker restarted")
            assert ok["status"] == "ok"
            await p.wait_for(T.alarm_state(degraded), lambda a: a["state"] == "normal")
