"""The evaluator on a fake clock: delays, deadband, stale values, availability and the ISA-18.2 lifecycle."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bcc_contract.fleet import WAN_LINK_DOWN
from bcc_contract.reports import backlog_payload
from bcc_contract.topics import OFFLINE
from devices.loader import DEMO_SITE, load_site
from iot_gateway.alarms.engine import AlarmEvent, AlarmState, CommandError, Evaluator
from iot_gateway.alarms.rules import load_rules, parse_rules, rules_path_for

SITE = load_site(DEMO_SITE)
MSG = {"id": "pesan", "en": "message"}
T0 = 1_800_000_000.0
HOT = "hot.env_front"


def evaluator(*rules: dict[str, Any], max_shelve_s: float = 3600) -> Evaluator:
    book = {"site": "bcc_room", "max_shelve_s": max_shelve_s, "rules": list(rules)}
    return Evaluator(parse_rules(book, SITE, "<test>"), start=T0)


def hot(**kw: Any) -> dict[str, Any]:
    base = {"id": "hot", "kind": "high", "severity": "high", "message": MSG, "devices": ["env_front"]}
    return {**base, "point": "temperature", "limit": 27, "deadband": 0.5, **kw}


def kinds(events: list[AlarmEvent]) -> list[tuple[str, str]]:
    return [(e.alarm, e.event) for e in events]


class Clock:
    """A fake clock that feeds the evaluator and collects every event."""

    def __init__(self, ev: Evaluator) -> None:
        self.ev, self.now, self.events = ev, T0, list[AlarmEvent]()

    def state(self, value: float, device: str = "env_front", dt: float = 1.0) -> None:
        self.now += dt
        self.events += self.ev.on_state(device, {"temperature": value}, self.now)
        self.events += self.ev.tick(self.now)

    def wait(self, seconds: float, step: float = 0.5) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += step
            self.events += self.ev.tick(self.now)


def test_on_delay_is_respected_and_the_alarm_raises_once() -> None:
    clock = Clock(evaluator(hot(on_delay_s=30, off_delay_s=10)))
    clock.state(27.4)
    crossed = clock.now
    clock.wait(29)
    assert clock.events == []
    clock.wait(1.5)
    assert kinds(clock.events) == [(HOT, "raised")]
    assert 30 <= clock.events[0].at - crossed <= 30.5
    assert clock.events[0].state is AlarmState.ACTIVE_UNACKED and clock.events[0].value == 27.4


def test_a_value_that_dips_back_within_the_on_delay_raises_nothing() -> None:
    clock = Clock(evaluator(hot(on_delay_s=5)))
    for n in range(60):  # 27.5 and 26.0 in turn: the condition never holds for 5 s
        clock.state(27.5 if n % 2 else 26.0, dt=2)
    assert clock.events == []


def test_a_noisy_sensor_around_the_limit_raises_once_not_fifty_times() -> None:
    rng = random.Random(20)
    clock = Clock(evaluator(hot(on_delay_s=10, off_delay_s=30)))
    for _ in range(600):  # ten minutes at 1 Hz of 27.0 +- 0.3 °C: about 300 crossings of the limit
        clock.state(27.0 + rng.uniform(-0.3, 0.3))
    crossings = 300  # order of magnitude, the point is the contrast
    assert kinds(clock.events) == [(HOT, "raised")], f"{len(clock.events)} events for ~{crossings} crossings"
    # it clears once the value is below the deadband (26.5) for the off-delay
    for _ in range(29):
        clock.state(26.4)
    assert kinds(clock.events) == [(HOT, "raised")]
    clock.state(26.4, dt=2)
    assert kinds(clock.events) == [(HOT, "raised"), (HOT, "cleared")]
    assert clock.events[-1].state is AlarmState.CLEARED_UNACKED


def test_without_deadband_or_delays_the_same_noise_chatters() -> None:
    """The control for the test above: the noise does cross the limit many times."""
    rng = random.Random(20)
    clock = Clock(evaluator(hot(deadband=0)))
    for _ in range(600):
        clock.state(27.0 + rng.uniform(-0.3, 0.3))
    assert len(clock.events) > 100


def test_isa_lifecycle_with_who_when_and_notes() -> None:
    ev = evaluator(hot())
    clock = Clock(ev)
    clock.state(28)
    assert ev.alarms[HOT].state is AlarmState.ACTIVE_UNACKED
    [acked] = ev.ack(HOT, "siti", "fan checked", clock.now + 1)
    assert (acked.event, acked.state, acked.who, acked.note) == (
        "acked",
        AlarmState.ACTIVE_ACKED,
        "siti",
        "fan checked",
    )
    with pytest.raises(CommandError, match="nothing to acknowledge"):
        ev.ack(HOT, "siti", "", clock.now + 2)
    clock.state(26)
    assert clock.events[-1].event == "cleared" and clock.events[-1].state is AlarmState.NORMAL
    # returned to normal before anyone acknowledged it: cleared_unacked, then normal on ack
    clock.state(28)
    clock.state(26)
    assert [e.state for e in clock.events[-2:]] == [AlarmState.ACTIVE_UNACKED, AlarmState.CLEARED_UNACKED]
    [ack] = ev.ack(HOT, "budi", "", clock.now)
    assert ack.state is AlarmState.NORMAL and ack.who == "budi"
    # raised again while cleared_unacked goes back to active_unacked
    clock.state(28)
    clock.state(26)
    clock.state(28)
    assert [e.state for e in clock.events[-3:]] == [
        AlarmState.ACTIVE_UNACKED,
        AlarmState.CLEARED_UNACKED,
        AlarmState.ACTIVE_UNACKED,
    ]


def test_shelving_suppresses_until_expiry_then_returns_to_the_condition() -> None:
    ev = evaluator(hot(), max_shelve_s=600)
    clock = Clock(ev)
    with pytest.raises(CommandError, match="needs a reason"):
        ev.shelve(HOT, "siti", " ", 60, clock.now)
    with pytest.raises(CommandError, match="at most 600 s"):
        ev.shelve(HOT, "siti", "sensor being replaced", 601, clock.now)
    with pytest.raises(CommandError, match="'by' must name who acts"):
        ev.shelve(HOT, "", "sensor being replaced", 60, clock.now)
    with pytest.raises(CommandError, match="unknown alarm 'nope'"):
        ev.ack("nope", "siti", "", clock.now)
    with pytest.raises(CommandError, match="not shelved"):
        ev.unshelve(HOT, "siti", "", clock.now)
    [shelved] = ev.shelve(HOT, "siti", "sensor being replaced", 60, clock.now)
    assert (shelved.state, shelved.note) == (AlarmState.SHELVED, "sensor being replaced")
    for _ in range(30):
        clock.state(29)  # hot, but shelved: no event
    assert clock.events == []
    clock.wait(31)
    [unshelved] = clock.events
    assert (unshelved.event, unshelved.who, unshelved.state) == (
        "unshelved",
        "system",
        AlarmState.ACTIVE_UNACKED,
    )
    # shelved while hot, cooled while shelved, unshelved by hand: back to normal
    ev.shelve(HOT, "siti", "maintenance", 300, clock.now)
    clock.state(20)
    [back] = ev.unshelve(HOT, "budi", "done", clock.now)
    assert (back.state, back.who, back.note) == (AlarmState.NORMAL, "budi", "done")


def test_stale_values_raise_unless_the_device_or_the_gateway_or_our_link_is_down() -> None:
    stale = {
        "id": "stale",
        "kind": "stale",
        "severity": "medium",
        "message": MSG,
        "devices": ["env_front"],
        "after_s": 60,
    }
    ev = evaluator(stale)
    clock = Clock(ev)
    clock.state(25)
    clock.wait(59)
    assert clock.events == []
    clock.wait(1)
    assert kinds(clock.events) == [("stale.env_front", "raised")]
    clock.state(25)
    assert kinds(clock.events)[-1] == ("stale.env_front", "cleared")
    # nothing comes while the gateway is offline, its building's WAN link is down, the device is
    # offline or we lost the broker
    outages: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (lambda: ev.on_bridge(OFFLINE, clock.now), lambda: ev.on_bridge(None, clock.now)),
        (lambda: ev.on_bridge(WAN_LINK_DOWN, clock.now), lambda: ev.on_bridge(None, clock.now)),
        (
            lambda: ev.on_availability("env_front", False, clock.now),
            lambda: ev.on_availability("env_front", True, clock.now),
        ),
        (lambda: ev.on_link(False, clock.now), lambda: ev.on_link(True, clock.now)),
    ]
    for down, up in outages:
        mark = len(clock.events)
        down()
        clock.wait(300)
        up()
        clock.wait(59)
        assert clock.events[mark:] == [], "stale raised while the data could not flow, or right after"
        clock.state(25)


def test_offline_and_gateway_offline_follow_availability_with_their_delays() -> None:
    loaded = load_rules(rules_path_for(SITE), SITE)
    ev = Evaluator(loaded, start=T0)
    events = ev.on_availability("lights_a", False, T0 + 1)
    events += ev.tick(T0 + 60)
    assert events == []
    events += ev.tick(T0 + 61)
    assert kinds(events) == [("device_offline.lights_a", "raised")]
    events += ev.on_availability("lights_a", True, T0 + 70) + ev.tick(T0 + 79.9)
    assert len(events) == 1
    events += ev.tick(T0 + 80)
    assert kinds(events)[-1] == ("device_offline.lights_a", "cleared")
    events = ev.on_bridge(OFFLINE, T0 + 100) + ev.tick(T0 + 110)
    assert kinds(events) == [("gateway_offline.bridge", "raised")]
    assert [e.value for e in events] == ["offline"]


def test_gateway_offline_says_whether_the_gateway_or_its_wan_link_is_down() -> None:
    """The value of a gateway_offline alarm is why the gateway counts as offline; a reason that changes
    while the alarm holds changes its value, not its state; it clears (after its off-delay) only once
    the gateway is online again."""
    ev = Evaluator(load_rules(rules_path_for(SITE), SITE), start=T0)  # on 10 s, off 5 s
    gateway = ev.alarms["gateway_offline.bridge"]
    events = ev.on_bridge(WAN_LINK_DOWN, T0) + ev.tick(T0 + 9.9)
    assert events == []
    events = ev.tick(T0 + 10)
    assert kinds(events) == [("gateway_offline.bridge", "raised")] and events[0].value == "wan_link_down"
    assert ev.on_bridge(OFFLINE, T0 + 20) + ev.tick(T0 + 40) == []  # link back, the state says offline
    assert gateway.active and gateway.value == "offline"
    events = ev.on_bridge(None, T0 + 50) + ev.tick(T0 + 54.9)
    assert events == []
    events = ev.tick(T0 + 55)
    assert kinds(events) == [("gateway_offline.bridge", "cleared")] and events[0].value == "online"


def test_state_rules_on_booleans() -> None:
    rule = {"id": "relay", "kind": "state", "severity": "low", "message": MSG, "devices": ["lights_a"]}
    ev = evaluator({**rule, "point": "relay_1", "value": "OFF"})
    events = ev.on_state("lights_a", {"relay_1": "ON"}, T0) + ev.on_state(
        "lights_a", {"relay_1": "OFF"}, T0 + 1
    )
    events += ev.on_state("lights_a", {"relay_1": True}, T0 + 2)
    assert kinds(events) == [("relay.lights_a", "raised"), ("relay.lights_a", "cleared")]


def test_restored_alarms_do_not_raise_twice() -> None:
    ev = evaluator(hot())
    clock = Clock(ev)
    clock.state(28)
    saved = ev.snapshot()
    again = evaluator(hot())
    assert again.restore({**saved, "gone.env_front": saved[HOT]}) == ["gone.env_front"]
    assert again.alarms[HOT].state is AlarmState.ACTIVE_UNACKED
    assert again.on_state("env_front", {"temperature": 28.5}, clock.now + 5) == []
    assert kinds(again.on_state("env_front", {"temperature": 20}, clock.now + 6)) == [(HOT, "cleared")]


def test_bad_values_keep_the_condition() -> None:
    ev = evaluator(hot())
    assert kinds(ev.on_state("env_front", {"temperature": 28}, T0)) == [(HOT, "raised")]
    assert ev.on_state("env_front", {"temperature": "hot"}, T0 + 1) == []
    assert ev.on_state("env_front", {"temperature": None}, T0 + 2) == []


def test_back_after_losing_the_broker_the_alarm_system_is_degraded_then_waits_for_an_ack() -> None:
    rule = {"id": "degraded", "kind": "alarm_system", "severity": "high", "message": MSG, "after_s": 10}
    ev = evaluator({**rule, "off_delay_s": 5}, hot())
    assert kinds(ev.on_state("env_front", {"temperature": 28}, T0)) == [(HOT, "raised")]
    ev.on_link(False, T0 + 1)
    assert ev.tick(T0 + 600) == [], "nothing raised or cleared for what could not be seen"
    assert kinds(ev.on_link(True, T0 + 601)) == [("degraded.evaluator", "raised")]
    assert ev.alarms[HOT].state is AlarmState.ACTIVE_UNACKED, "no false clear after the reconnect"
    ev2 = evaluator({**rule, "off_delay_s": 5})
    ev2.on_link(False, T0)
    assert ev2.on_link(True, T0 + 9.9) == [], "a short loss is not news"
    ev2.on_link(False, T0 + 20)
    [raised] = ev2.on_link(True, T0 + 50)
    assert (raised.alarm, raised.event, raised.value) == ("degraded.evaluator", "raised", 30.0)
    assert ev2.tick(T0 + 50.25) == []  # the next tick sees the flow back: the off-delay starts
    assert ev2.tick(T0 + 55.2) == []
    [cleared] = ev2.tick(T0 + 55.3)
    assert cleared.state is AlarmState.CLEARED_UNACKED
    assert ev2.ack("degraded.evaluator", "siti", "checked the log", T0 + 60)[0].state is AlarmState.NORMAL


def test_reports_overdue_follow_the_portals_backlog_with_their_delays() -> None:
    """The shipped citizen-side rules on the portal's backlog payload (bcc_contract.reports): more than 5
    reports past verification, more than 10 past response, each held 10 minutes either way."""
    ev = Evaluator(load_rules(rules_path_for(SITE), SITE), start=T0)
    verify, respond = "reports_verification_overdue.reports", "reports_response_overdue.reports"

    def backlog(verification: int, response: int, at: float) -> list[AlarmEvent]:
        payload = backlog_payload(datetime.fromtimestamp(at, UTC), {}, {}, verification, response)
        return ev.on_backlog(payload, at) + tick(at)

    def tick(at: float) -> list[AlarmEvent]:  # no device sends states here: their stale alarms aside
        return [e for e in ev.tick(at) if e.alarm.endswith(".reports")]

    events = backlog(6, 10, T0 + 1) + tick(T0 + 600)
    assert events == [], "held 10 minutes; 10 late answers is not more than 10"
    events = tick(T0 + 601) + backlog(6, 11, T0 + 700)
    assert kinds(events) == [(verify, "raised")] and ev.alarms[verify].value == 6
    events = (
        backlog(5, 11, T0 + 800) + ev.tick(T0 + 1300) + ev.on_backlog({"overdue_response": "x"}, T0 + 1301)
    )
    assert kinds(events) == [(respond, "raised")], "a count of 5 clears only after 10 minutes"
    events = tick(T0 + 1400)
    assert kinds(events) == [(verify, "cleared")] and ev.alarms[respond].active, "garbage kept the condition"


def test_recorder_alarms_follow_the_recorders_status() -> None:
    """Any recorder offline, or online but unable to write to InfluxDB, after its on-delay; a recorder
    taken out of service (its retained status removed) no longer counts."""
    ev = Evaluator(load_rules(rules_path_for(SITE), SITE), start=T0)
    offline, influx = "recorder_offline.recorder", "influxdb_unreachable.recorder"

    def status(instance: str, at: float, **body: str) -> list[AlarmEvent]:
        found = ev.on_recorder(instance, body or None, at) + ev.tick(at)
        return [e for e in found if e.alarm.endswith(".recorder")]

    events = status("rec_a", T0 + 1, state="online", influxdb="reachable")
    events += status("rec_b", T0 + 2, state="online", influxdb="unreachable")
    events += status("rec_c", T0 + 3, state="offline", influxdb="unknown")
    assert events == []
    events = status("rec_a", T0 + 64, state="online", influxdb="reachable")
    assert kinds(events) == [(offline, "raised")] and ev.alarms[offline].value == "rec_c"
    events = status("rec_c", T0 + 70) + status("rec_a", T0 + 81, state="online", influxdb="reachable")
    assert kinds(events) == [(offline, "cleared")], "rec_c was taken out of service"
    events = status("rec_b", T0 + 123, state="online", influxdb="unreachable")
    assert kinds(events) == [(influx, "raised")] and ev.alarms[influx].value == "rec_b"
    events = status("rec_b", T0 + 130, state="offline", influxdb="unknown")
    events += status("rec_b", T0 + 141, state="offline", influxdb="unknown")
    assert kinds(events) == [(influx, "cleared")], "an offline recorder is recorder_offline's, not this one's"


def test_a_null_value_neither_raises_nor_clears() -> None:
    """null: the device reports no valid value for the point (a NaN float, docs/mqtt.md)."""
    ev = evaluator(hot(), {**hot(), "id": "cold", "kind": "low", "limit": 18})
    assert ev.on_state("env_front", {"temperature": None}, T0) == []  # no raise from nothing
    assert kinds(ev.on_state("env_front", {"temperature": 28}, T0 + 1)) == [(HOT, "raised")]
    assert ev.on_state("env_front", {"temperature": None}, T0 + 2) == []  # no clear either
    assert ev.alarms[HOT].active and ev.alarms[HOT].value == 28  # the last value judged
    relay = {"kind": "state", "severity": "low", "message": MSG, "devices": ["lights_a"], "point": "relay_1"}
    ev = evaluator({**relay, "id": "off", "value": "OFF"}, {**relay, "id": "on", "value": "ON"})
    assert ev.on_state("lights_a", {"relay_1": None}, T0) == []
    assert kinds(ev.on_state("lights_a", {"relay_1": "ON"}, T0 + 1)) == [("on.lights_a", "raised")]
    assert ev.on_state("lights_a", {"relay_1": None}, T0 + 2) == []


def test_a_null_point_is_not_a_fresh_value_for_its_stale_rule() -> None:
    """A stale rule on a point: states that carry the point as null do not keep it fresh (the device
    has reported no valid value for after_s); a stale rule on the device counts every state."""
    stale = {"kind": "stale", "severity": "medium", "message": MSG, "devices": ["env_front"], "after_s": 60}
    ev = evaluator({**stale, "id": "point", "point": "temperature"}, {**stale, "id": "device"})
    clock = Clock(ev)
    clock.state(25)
    for _ in range(61):
        clock.now += 1
        clock.events += ev.on_state("env_front", {"temperature": None}, clock.now) + ev.tick(clock.now)
    assert kinds(clock.events) == [("point.env_front", "raised")]
    clock.state(25)
    assert kinds(clock.events)[-1] == ("point.env_front", "cleared")
