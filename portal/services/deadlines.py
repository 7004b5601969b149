"""SP4N-LAPOR! deadlines in working days: verification within 3, the agency's response within 5.

Working days are Monday to Friday in Binjai's time zone (WIB, UTC+7). National holidays are not yet
subtracted (the list changes every year by joint ministerial decree; add it as data when the city has it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

WIB = timezone(timedelta(hours=7), "WIB")
VERIFY_WORKING_DAYS = 3
RESPOND_WORKING_DAYS = 5
REOPEN_WINDOW = timedelta(days=14)


def add_working_days(start: datetime, days: int) -> datetime:
    """End (23:59:59 WIB) of the ``days``-th working day after the local day of ``start``, in UTC."""
    day: date = start.astimezone(WIB).date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return datetime.combine(day, time(23, 59, 59), WIB).astimezone(UTC)


def verify_due(created_at: datetime) -> datetime:
    return add_working_days(created_at, VERIFY_WORKING_DAYS)


def respond_due(dispatched_at: datetime) -> datetime:
    return add_working_days(dispatched_at, RESPOND_WORKING_DAYS)
