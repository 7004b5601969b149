"""SP4N-LAPOR! deadlines in working days: verification within 3, the agency's response within 5.

Working days are Monday to Friday in Binjai's time zone (WIB, UTC+7), minus the holidays listed in
``portal/data/holidays.yaml``: per year, the national holidays and cuti bersama of that year's joint
decree (SKB 3 Menteri) with its source, or only the fixed-date holidays while the decree is not in
(the year is not ``complete``; staff are warned from 1 October, :func:`missing_decree`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import yaml

WIB = timezone(timedelta(hours=7), "WIB")
VERIFY_WORKING_DAYS = 3
RESPOND_WORKING_DAYS = 5
REOPEN_WINDOW = timedelta(days=14)
FEEDBACK_WINDOW = timedelta(days=30)  # the reporter may rate a closure this long after it


HOLIDAYS_FILE = Path(__file__).resolve().parent.parent / "data" / "holidays.yaml"


# From this day of a year on, staff are warned while next year's decree is not in the holiday file.
WARN_FROM = (10, 1)


class HolidayFileError(ValueError):
    """The holiday file is malformed; the message lists every problem."""


@dataclass(frozen=True)
class HolidayCalendar:
    days: dict[date, str]
    complete: frozenset[int]  # years whose decree is listed in full
    sources: dict[int, str]


@functools.cache
def calendar(path: Path = HOLIDAYS_FILE) -> HolidayCalendar:
    """The holiday file, checked: every day inside its year, a source and ``complete`` for every year."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems: list[str] = []
    days: dict[date, str] = {}
    complete: set[int] = set()
    sources: dict[int, str] = {}
    years = data.get("years") if isinstance(data, dict) else None
    if not isinstance(years, dict):
        raise HolidayFileError(f"{path}: expected a mapping `years: {{YEAR: {{source, complete, days}}}}`")
    for year, entry in years.items():
        if not isinstance(year, int) or not isinstance(entry, dict):
            problems.append(f"{year}: expected YEAR: {{source, complete, days}}")
            continue
        if not isinstance(entry.get("source"), str) or not entry["source"].strip():
            problems.append(f"{year}: no source")
        if not isinstance(entry.get("complete"), bool):
            problems.append(f"{year}: `complete` must be true or false")
        elif entry["complete"]:
            complete.add(year)
        sources[year] = str(entry.get("source", ""))
        for day, name in (entry.get("days") or {}).items():
            if not isinstance(day, date) or day.year != year or not isinstance(name, str) or not name:
                problems.append(f"{year}: {day!r}: expected a date of {year} with a name")
            else:
                days[day] = name
    if problems:
        raise HolidayFileError(f"{path}: " + "; ".join(problems))
    return HolidayCalendar(days, frozenset(complete), sources)


@functools.cache
def holidays(path: Path = HOLIDAYS_FILE) -> frozenset[date]:
    """The non-working days besides weekends."""
    return frozenset(calendar(path).days)


def missing_decree(today: date, path: Path = HOLIDAYS_FILE) -> int | None:
    """The year whose decree staff must add now, or None: this year's at any time, next year's from
    1 October (the decree is usually signed in September)."""
    known = calendar(path).complete
    if today.year not in known:
        return today.year
    if (today.month, today.day) >= WARN_FROM and today.year + 1 not in known:
        return today.year + 1
    return None


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays()


def add_working_days(start: datetime, days: int) -> datetime:
    """End (23:59:59 WIB) of the ``days``-th working day after the local day of ``start``, in UTC."""
    return _working_day_end(start.astimezone(WIB).date(), days)


@functools.lru_cache(maxsize=64)
def _working_day_end(day: date, days: int) -> datetime:
    """:func:`add_working_days` by local day: every submission of a day asks the same question."""
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day, time(23, 59, 59), WIB).astimezone(UTC)


def verify_due(created_at: datetime) -> datetime:
    return add_working_days(created_at, VERIFY_WORKING_DAYS)


def respond_due(dispatched_at: datetime) -> datetime:
    return add_working_days(dispatched_at, RESPOND_WORKING_DAYS)
