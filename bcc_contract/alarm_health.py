"""Alarm system health as EEMUA 191 measures it, from the alarm history (docs/alarms.md, "Alarm
health"): the same numbers on the portal's staff page, in ``bcc alarms``' Prometheus metrics and in the
daily summary e-mail, so this is the one place they are computed.

- the alarm rate: alarms raised per hour over the window, and in its busiest clock hour (EEMUA 191's
  benchmark: about 1 per 10 minutes is manageable for one operator, more than 10 in 10 minutes is a
  flood). The room has one alarm console, so this is also the rate per operator at it; and the alarms
  each operator acknowledged per hour (``acked_per_hour``, by name);
- the most frequent alarms (raised most often in the window);
- chattering alarms: more than ``CHATTER_TRANSITIONS`` transitions (raised or cleared) within any
  ``CHATTER_WINDOW_S`` seconds;
- standing alarms: active for longer than ``STANDING_S``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

WINDOW_S = 86400.0
CHATTER_WINDOW_S = 60.0
CHATTER_TRANSITIONS = 3
STANDING_S = 86400.0
TOP = 10
# Events that are the condition coming or going: what chattering counts, and "raised" what the rate counts.
TRANSITIONS = frozenset({"raised", "cleared"})


@dataclass(frozen=True)
class HistoryEvent:
    alarm: str
    event: str  # raised, cleared, acked, shelved, unshelved
    at: float  # POSIX seconds
    who: str = "system"


@dataclass(frozen=True)
class ActiveAlarm:
    alarm: str
    severity: str
    raised_at: float


@dataclass(frozen=True)
class AlarmHealth:
    now: float
    window_s: float
    raised: int
    per_hour: float
    peak_hour: int  # alarms raised in the busiest clock hour of the window
    frequent: list[tuple[str, int]] = field(default_factory=list)  # (alarm, times raised), most first
    chattering: list[tuple[str, int]] = field(default_factory=list)  # (alarm, most transitions in a window)
    standing: list[tuple[str, str, float]] = field(default_factory=list)  # (alarm, severity, hours active)
    acked_per_hour: list[tuple[str, float]] = field(default_factory=list)  # (operator, acks per hour)


def compute_health(
    events: Iterable[HistoryEvent],
    active: Iterable[ActiveAlarm],
    now: float,
    window_s: float = WINDOW_S,
    top: int = TOP,
) -> AlarmHealth:
    """Health of the window ``(now - window_s, now]`` from its events and the alarms active now."""
    since = now - window_s
    inside = sorted((e for e in events if since < e.at <= now), key=lambda e: e.at)
    raised = [e for e in inside if e.event == "raised"]
    hours = window_s / 3600.0
    by_hour = Counter(int(e.at // 3600) for e in raised)
    frequent = Counter(e.alarm for e in raised).most_common(top)
    acks = Counter(e.who for e in inside if e.event == "acked")
    return AlarmHealth(
        now=now,
        window_s=window_s,
        raised=len(raised),
        per_hour=round(len(raised) / hours, 3),
        peak_hour=max(by_hour.values(), default=0),
        frequent=frequent,
        chattering=chattering(inside),
        standing=sorted(
            (
                (a.alarm, a.severity, round((now - a.raised_at) / 3600.0, 1))
                for a in active
                if now - a.raised_at > STANDING_S
            ),
            key=lambda s: -s[2],
        ),
        acked_per_hour=sorted(((who, round(n / hours, 3)) for who, n in acks.items()), key=lambda a: -a[1]),
    )


def chattering(events: Iterable[HistoryEvent]) -> list[tuple[str, int]]:
    """Alarms with more than CHATTER_TRANSITIONS transitions within CHATTER_WINDOW_S, with the most
    transitions any such window held; most chattering first."""
    times: dict[str, list[float]] = {}
    for e in events:
        if e.event in TRANSITIONS:
            times.setdefault(e.alarm, []).append(e.at)
    found: list[tuple[str, int]] = []
    for alarm, ts in times.items():
        ts.sort()
        most, start = 0, 0
        for end, t in enumerate(ts):
            while t - ts[start] > CHATTER_WINDOW_S:
                start += 1
            most = max(most, end - start + 1)
        if most > CHATTER_TRANSITIONS:
            found.append((alarm, most))
    return sorted(found, key=lambda f: (-f[1], f[0]))
