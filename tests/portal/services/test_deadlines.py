"""SP4N-LAPOR! deadlines: 3 and 5 working days, counted in Binjai's time zone (WIB)."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.services.deadlines import respond_due, verify_due


def test_verification_deadline_skips_the_weekend() -> None:
    # Thursday 5 Nov 2026, 20:00 WIB -> Fri, Mon, Tue: due Tuesday 10 Nov 23:59:59 WIB.
    assert verify_due(datetime(2026, 11, 5, 13, 0, tzinfo=UTC)) == datetime(
        2026, 11, 10, 16, 59, 59, tzinfo=UTC
    )


def test_local_day_decides_not_the_utc_day() -> None:
    # Friday 6 Nov 2026 at 23:30 UTC is already Saturday 06:30 WIB: counting starts on Monday.
    assert verify_due(datetime(2026, 11, 6, 23, 30, tzinfo=UTC)) == datetime(
        2026, 11, 11, 16, 59, 59, tzinfo=UTC
    )


def test_response_deadline_is_five_working_days() -> None:
    assert respond_due(datetime(2026, 11, 2, 2, 0, tzinfo=UTC)) == datetime(
        2026, 11, 9, 16, 59, 59, tzinfo=UTC
    )


def test_national_holidays_are_not_working_days() -> None:
    # Thursday 24 Dec 2026, 10:00 WIB -> 25 Dec (Natal) and the weekend do not count: Mon 28, Tue 29,
    # Wed 30 -> due Wednesday 30 Dec 23:59:59 WIB.
    assert verify_due(datetime(2026, 12, 24, 3, 0, tzinfo=UTC)) == datetime(
        2026, 12, 30, 16, 59, 59, tzinfo=UTC
    )
    # Independence day (Monday 17 Aug 2026) is skipped too.
    assert verify_due(datetime(2026, 8, 14, 3, 0, tzinfo=UTC)) == datetime(
        2026, 8, 20, 16, 59, 59, tzinfo=UTC
    )
