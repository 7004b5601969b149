"""SP4N-LAPOR! deadlines: 3 and 5 working days, counted in Binjai's time zone (WIB)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from portal.services.deadlines import HolidayFileError, calendar, missing_decree, respond_due, verify_due


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


def test_deadlines_across_lebaran_2026() -> None:
    """Idul Fitri 1447 H: Sat 21 and Sun 22 Mar are the holidays, Fri 20, Mon 23 and Tue 24 cuti bersama
    (SKB 2026), and Nyepi (Thu 19) with its cuti bersama (Wed 18) just before."""
    # Tuesday 17 Mar 2026, 10:00 WIB: Wed 18 .. Tue 24 are not working days -> Wed 25, Thu 26, Fri 27.
    assert verify_due(datetime(2026, 3, 17, 3, 0, tzinfo=UTC)) == datetime(
        2026, 3, 27, 16, 59, 59, tzinfo=UTC
    )
    # Dispatched Monday 16 Mar: Tue 17 counts, then Wed 25 .. Fri 27 and Mon 30 -> due Mon 30 Mar.
    assert respond_due(datetime(2026, 3, 16, 3, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 16, 59, 59, tzinfo=UTC
    )
    # Ascension (Thu 14 May) with its cuti bersama (Fri 15): submitted Wed 13 -> Mon 18, Tue 19, Wed 20.
    assert verify_due(datetime(2026, 5, 13, 3, 0, tzinfo=UTC)) == datetime(
        2026, 5, 20, 16, 59, 59, tzinfo=UTC
    )


def test_holiday_file_lists_the_2026_decree_in_full() -> None:
    cal = calendar()
    days_2026 = [d for d in cal.days if d.year == 2026]
    cuti = [d for d in days_2026 if cal.days[d].startswith("Cuti bersama")]
    # the decree: 17 national holidays and 8 days of cuti bersama
    assert (len(days_2026) - len(cuti), len(cuti)) == (17, 8)
    assert 2026 in cal.complete and "1497" in cal.sources[2026]
    assert all(cal.sources[y] for y in cal.sources)


def test_staff_are_warned_from_october_when_next_years_decree_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text(
        "years:\n  2026: {source: SKB 2026, complete: true, days: {2026-03-21: Idul Fitri}}\n"
        "  2027: {source: fixed dates only, complete: false, days: {2027-01-01: Tahun Baru}}\n"
    )
    assert missing_decree(date(2026, 9, 30), path) is None
    assert missing_decree(date(2026, 10, 1), path) == 2027
    assert missing_decree(date(2027, 2, 1), path) == 2027  # a year without its decree: always
    assert missing_decree(date(2026, 10, 1)) == 2027  # the shipped file has no 2027 decree yet


def test_a_malformed_holiday_file_is_refused_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text("years:\n  2026: {complete: yes-ish, days: {2025-12-31: Salah tahun}}\n")
    with pytest.raises(HolidayFileError) as err:
        calendar(path)
    assert "2026: no source" in str(err.value)
    assert "`complete` must be true or false" in str(err.value)
    assert "expected a date of 2026" in str(err.value)
