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
