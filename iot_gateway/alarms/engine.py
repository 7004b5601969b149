"""The alarm evaluator: pure, no I/O, every method takes the time (``now``, POSIX seconds) from its caller.

Feeds are device states (``on_state``), device availability (``on_availability``), the gateway's bridge
state and its building's WAN link (``on_bridge``) and the passing of time (``tick``). Each returns the
transitions it caused, as ``AlarmEvent``s, in order. Operators act with ``ack``, ``shelve`` and ``unshelve``.

Lifecycle (ISA-18.2, docs/alarms.md): normal -> active_unacked -> active_acked -> normal when the
condition clears; active_unacked -> cleared_unacked when it clears before anyone acknowledged it, and
cleared_unacked -> normal on acknowledgement. A shelved alarm is suppressed until its expiry (or an
unshelve), then returns to what its condition says.

Raw condition with hysteresis (high: raised above ``limit``, gone at ``limit - deadband`` or below; low
mirrored), then the delays: the condition must hold ``on_delay_s`` before the alarm is raised and be gone
``off_delay_s`` before it clears, so a value wandering around a limit raises once, not at every crossing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bcc_contract.topics import ONLINE
from iot_gateway.alarms.rules import BRIDGE, EVALUATOR, RECORDER, REPORTS, AlarmSpec, LoadedRules

SYSTEM = "system"
MAX_WHO = 64
MAX_NOTE = 500


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKED = "active_unacked"
    ACTIVE_ACKED = "active_acked"
    CLEARED_UNACKED = "cleared_unacked"
    SHELVED = "shelved"


class CommandError(ValueError):
    """An operator action that cannot be applied (unknown alarm, nothing to acknowledge, bad input)."""


@dataclass(frozen=True)
class AlarmEvent:
    """One transition: ``event`` is raised, cleared, acked, shelved or unshelved; ``state`` the new state."""

    alarm: str
    event: str
    state: AlarmState
    at: float
    who: str = SYSTEM
    note: str = ""
    value: Any = None


@dataclass
class Alarm:
    """The evaluator's view of one alarm (what ``record`` persists is enough to resume it)."""

    spec: AlarmSpec
    state: AlarmState = AlarmState.NORMAL
    active: bool = False  # the condition after the delays
    condition: bool = False  # the condition with hysteresis, before the delays
    changed_at: float | None = None  # when ``condition`` last changed
    value: Any = None
    since: float | None = None  # time of the last transition
    raised_at: float | None = None
    shelved_until: float | None = None
    shelved_by: str = ""
    shelve_reason: str = ""
    last_seen: float | None = None  # stale rules: last state update

    def record(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "active": self.active,
            "value": self.value,
            "since": self.since,
            "raised_at": self.raised_at,
            "shelved_until": self.shelved_until,
            "shelved_by": self.shelved_by,
            "shelve_reason": self.shelve_reason,
        }

    def restore(self, rec: Mapping[str, Any]) -> None:
        self.state = AlarmState(rec["state"])
        self.active = self.condition = bool(rec["active"])
        self.value = rec.get("value")
        self.since = rec.get("since")
        self.raised_at = rec.get("raised_at")
        self.shelved_until = rec.get("shelved_until")
        self.shelved_by = rec.get("shelved_by") or ""
        self.shelve_reason = rec.get("shelve_reason") or ""


@dataclass
class Evaluator:
    rules: LoadedRules
    start: float
    alarms: dict[str, Alarm] = field(default_factory=dict)
    # Inputs the stale rules depend on: stale values are not judged while the data cannot flow.
    link_up: bool = True
    link_lost_at: float | None = None
    bridge_online: bool = True
    offline_devices: set[str] = field(default_factory=set)
    recorders: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # instance -> its status

    def __post_init__(self) -> None:
        self.alarms = {s.id: Alarm(s, last_seen=self.start) for s in self.rules.alarms}
        self._by_device: dict[str, list[Alarm]] = {}
        for alarm in self.alarms.values():
            self._by_device.setdefault(alarm.spec.device, []).append(alarm)
        # What ``tick`` must look at, so that it costs nothing for the thousands of quiet alarms:
        # conditions waiting for their delay, shelved alarms, stale and alarm_system rules.
        self._waiting: dict[str, Alarm] = {}
        self._timed = [a for a in self.alarms.values() if a.spec.rule.kind in ("stale", "alarm_system")]

    # --- persistence --------------------------------------------------------------------------------
    def restore(self, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Resume persisted alarms; returns the ids that no longer have a rule (forgotten)."""
        gone = []
        for alarm_id, rec in records.items():
            if alarm_id in self.alarms:
                alarm = self.alarms[alarm_id]
                alarm.restore(rec)
                if alarm.shelved_until is not None:
                    self._waiting[alarm_id] = alarm
            else:
                gone.append(alarm_id)
        return gone

    # --- feeds --------------------------------------------------------------------------------------
    def on_state(self, device: str, state: Mapping[str, Any], now: float) -> list[AlarmEvent]:
        events: list[AlarmEvent] = []
        for alarm in self._by_device.get(device, ()):
            rule = alarm.spec.rule
            if rule.kind == "stale":
                # A point the device reports as null (NaN/Inf: no valid value) is not a fresh value.
                if rule.point is None or state.get(rule.point) is not None:
                    alarm.last_seen = now
                    self._set(alarm, False, now, None)
            elif rule.kind in ("high", "low", "state") and rule.point is not None and rule.point in state:
                value = state[rule.point]
                self._set(alarm, self._condition(alarm, value), now, value)
            events += self._settle(alarm, now)
        return events

    def on_availability(self, device: str, online: bool, now: float) -> list[AlarmEvent]:
        if online:
            self.offline_devices.discard(device)
        else:
            self.offline_devices.add(device)
        events: list[AlarmEvent] = []
        for alarm in self._by_device.get(device, ()):
            if alarm.spec.rule.kind == "offline":
                self._set(alarm, not online, now, "online" if online else "offline")
                events += self._settle(alarm, now)
            elif alarm.spec.rule.kind == "stale" and online:
                alarm.last_seen = max(alarm.last_seen or now, now)  # judged again from now on
        return events

    def on_bridge(self, why_offline: str | None, now: float) -> list[AlarmEvent]:
        """The site's gateway as the center sees it (``FleetView.why_offline``): None while it is
        online, else why not (``offline``: its own state; ``wan_link_down``: its building's bridge to
        the center is down). That reason is the gateway_offline alarm's value."""
        online = why_offline is None
        if online and not self.bridge_online:
            self._restart_stale_clocks(now)
        self.bridge_online = online
        events: list[AlarmEvent] = []
        for alarm in self._by_device.get(BRIDGE, ()):
            self._set(alarm, not online, now, ONLINE if online else why_offline)
            events += self._settle(alarm, now)
        return events

    def on_backlog(self, backlog: Mapping[str, Any], now: float) -> list[AlarmEvent]:
        """The portal's report backlog (``<base>/reports/backlog``): ``overdue_verification`` and
        ``overdue_response`` are the counts of open reports past each deadline."""
        events: list[AlarmEvent] = []
        for alarm in self._by_device.get(REPORTS, ()):
            value = backlog.get(f"overdue_{alarm.spec.rule.deadline}")
            self._set(alarm, self._condition(alarm, value), now, value)
            events += self._settle(alarm, now)
        return events

    def on_recorder(self, instance: str, status: Mapping[str, Any] | None, now: float) -> list[AlarmEvent]:
        """One recorder's retained status (None: removed from service). recorder_offline alarms hold
        while any recorder says ``offline`` (its last will, or a clean stop); influxdb_unreachable ones
        while any online recorder cannot write to InfluxDB. The value names those recorders."""
        if status is None:
            self.recorders.pop(instance, None)
        else:
            self.recorders[instance] = status
        states = self.recorders.items()
        offline = sorted(i for i, s in states if s.get("state") == "offline")
        unreachable = sorted(
            i for i, s in states if s.get("state") == "online" and s.get("influxdb") == "unreachable"
        )
        events: list[AlarmEvent] = []
        for alarm in self._by_device.get(RECORDER, ()):
            names = offline if alarm.spec.rule.kind == "recorder_offline" else unreachable
            self._set(alarm, bool(names), now, ", ".join(names) or "-")
            events += self._settle(alarm, now)
        return events

    def on_link(self, up: bool, now: float, *, never_connected: bool = False) -> list[AlarmEvent]:
        """The evaluator's own broker connection: while it is down nothing arrives, which is not news
        (no stale alarm, no clear). Back after ``after_s`` or more, an alarm_system rule raises: alarms
        may have been missed meanwhile. It clears after its off-delay and waits for an acknowledgement."""
        events: list[AlarmEvent] = []
        if up and not self.link_up:
            self._restart_stale_clocks(now)
            lost = now - (self.link_lost_at if self.link_lost_at is not None else now)
            for alarm in self._by_device.get(EVALUATOR, ()):
                assert alarm.spec.rule.after_s is not None
                if lost >= alarm.spec.rule.after_s:
                    self._set(alarm, True, now, round(lost, 1))
                    events += self._settle(alarm, now)
        elif not up and self.link_up:
            # a start without the broker is not a loss: nothing was seen before it either
            self.link_lost_at = None if never_connected else now
        self.link_up = up
        return events

    def tick(self, now: float) -> list[AlarmEvent]:
        """Delays that ran out, stale values, shelving that expired."""
        events: list[AlarmEvent] = []
        judge_stale = self.link_up and self.bridge_online
        for alarm in self._timed:
            rule = alarm.spec.rule
            if rule.kind == "stale" and judge_stale and alarm.spec.device not in self.offline_devices:
                assert rule.after_s is not None and alarm.last_seen is not None
                if now - alarm.last_seen >= rule.after_s:
                    self._set(alarm, True, now, round(now - alarm.last_seen, 1))
            elif rule.kind == "alarm_system" and alarm.active and self.link_up:
                self._set(alarm, False, now, None)  # raised at the reconnect; the flow is back
        for alarm in list(self._waiting.values()):
            if alarm.shelved_until is not None and now >= alarm.shelved_until:
                events += self._unshelve(alarm, SYSTEM, "shelving expired", now)
            events += self._settle(alarm, now)
            if alarm.condition == alarm.active and alarm.shelved_until is None:
                del self._waiting[alarm.spec.id]
        return events

    # --- operators ----------------------------------------------------------------------------------
    def ack(self, alarm_id: str, who: str, note: str, now: float) -> list[AlarmEvent]:
        alarm = self._find(alarm_id)
        who, note = _who(who), _note(note)
        if alarm.state is AlarmState.ACTIVE_UNACKED:
            return [self._move(alarm, "acked", AlarmState.ACTIVE_ACKED, now, who, note)]
        if alarm.state is AlarmState.CLEARED_UNACKED:
            return [self._move(alarm, "acked", AlarmState.NORMAL, now, who, note)]
        raise CommandError(f"alarm {alarm_id} is {alarm.state.value}: nothing to acknowledge")

    def shelve(self, alarm_id: str, who: str, reason: str, duration_s: float, now: float) -> list[AlarmEvent]:
        alarm = self._find(alarm_id)
        who, reason = _who(who), _note(reason)
        limit = self.rules.book.max_shelve_s
        if not reason:
            raise CommandError("shelving needs a reason")
        if not 0 < duration_s <= limit:
            raise CommandError(f"shelving lasts more than 0 and at most {limit:g} s, not {duration_s:g}")
        alarm.shelved_until = now + duration_s
        self._waiting[alarm_id] = alarm
        alarm.shelved_by, alarm.shelve_reason = who, reason
        return [self._move(alarm, "shelved", AlarmState.SHELVED, now, who, reason)]

    def unshelve(self, alarm_id: str, who: str, note: str, now: float) -> list[AlarmEvent]:
        alarm = self._find(alarm_id)
        if alarm.state is not AlarmState.SHELVED:
            raise CommandError(f"alarm {alarm_id} is not shelved")
        return self._unshelve(alarm, _who(who), _note(note), now)

    # --- internals ----------------------------------------------------------------------------------
    def _find(self, alarm_id: str) -> Alarm:
        try:
            return self.alarms[alarm_id]
        except KeyError:
            raise CommandError(f"unknown alarm {alarm_id!r}") from None

    def _restart_stale_clocks(self, now: float) -> None:
        for alarm in self.alarms.values():
            if alarm.spec.rule.kind == "stale":
                alarm.last_seen = max(alarm.last_seen or now, now)

    @staticmethod
    def _condition(alarm: Alarm, value: Any) -> bool:
        rule = alarm.spec.rule
        if value is None:
            return alarm.condition  # null: the device reports no valid value, neither raise nor clear
        if rule.kind == "state":
            on = value is True or value == "ON"
            return on == (rule.value == "ON")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return alarm.condition  # not a number (a bad payload): keep what we had
        assert rule.limit is not None
        if rule.kind in ("high", "reports_overdue"):
            return value > rule.limit if not alarm.condition else value > rule.limit - rule.deadband
        return value < rule.limit if not alarm.condition else value < rule.limit + rule.deadband

    def _set(self, alarm: Alarm, condition: bool, now: float, value: Any) -> None:
        if value is not None:
            alarm.value = value
        if condition != alarm.condition:
            alarm.condition = condition
            alarm.changed_at = now
            if condition != alarm.active:
                self._waiting[alarm.spec.id] = alarm

    def _settle(self, alarm: Alarm, now: float) -> list[AlarmEvent]:
        if alarm.condition == alarm.active:
            return []
        rule = alarm.spec.rule
        delay = rule.on_delay_s if alarm.condition else rule.off_delay_s
        if alarm.changed_at is not None and now - alarm.changed_at < delay:
            return []
        alarm.active = alarm.condition
        if alarm.state is AlarmState.SHELVED:
            return []  # suppressed; the state is judged again at unshelve
        if alarm.active:
            alarm.raised_at = now
            return [self._move(alarm, "raised", AlarmState.ACTIVE_UNACKED, now)]
        after = AlarmState.NORMAL if alarm.state is AlarmState.ACTIVE_ACKED else AlarmState.CLEARED_UNACKED
        return [self._move(alarm, "cleared", after, now)]

    def _unshelve(self, alarm: Alarm, who: str, note: str, now: float) -> list[AlarmEvent]:
        alarm.shelved_until = None
        alarm.shelved_by = alarm.shelve_reason = ""
        after = AlarmState.ACTIVE_UNACKED if alarm.active else AlarmState.NORMAL
        if alarm.active:
            alarm.raised_at = now
        return [self._move(alarm, "unshelved", after, now, who, note)]

    @staticmethod
    def _move(
        alarm: Alarm, event: str, state: AlarmState, now: float, who: str = SYSTEM, note: str = ""
    ) -> AlarmEvent:
        alarm.state = state
        alarm.since = now
        return AlarmEvent(alarm.spec.id, event, state, now, who, note, alarm.value)

    def snapshot(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        chosen = self.alarms if ids is None else {i: self.alarms[i] for i in ids}
        return {i: a.record() for i, a in chosen.items()}


def _who(who: str) -> str:
    who = who.strip() if isinstance(who, str) else ""
    if not who or len(who) > MAX_WHO:
        raise CommandError(f"'by' must name who acts (1-{MAX_WHO} characters)")
    return who


def _note(note: str) -> str:
    note = note.strip() if isinstance(note, str) else ""
    if len(note) > MAX_NOTE:
        raise CommandError(f"a note or reason is at most {MAX_NOTE} characters")
    return note
