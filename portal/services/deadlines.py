"""SP4N-LAPOR! deadlines in working days: verification within 3, the agency's response within 5.

Working days are Monday to Friday in Binjai's time zone (WIB, UTC+7), minus the holidays listed in
``portal/data/holidays.yaml`` (fixed-date national holidays shipped; the yearly decree's moveable
holidays and collective leave are added there as data).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import yaml

WIB = timezone(timedelta(hours=7), "WIB")
VERIFY_WORKING_DAYS = 3
RESPOND_WORKING_DAYS = 5
REOPEN_WINDOW = timedelta(days=14)
FEEDBACK_WINDOW = timedelta(days=30)  # the reporter may rate a closure this long after it


HOLIDAYS_FILE = Path(__file__).resolve().parent.parent / "data" / "holidays.yaml"


@functools.cache
def holidays(path: Path = HOLIDAYS_FILE) -> frozenset[date]:
    """The non-working days of the holiday file (YAML ``date: name``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return frozenset(d if isinstance(d, date) else date.fromisoformat(str(d)) for d in data)


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
