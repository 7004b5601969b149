"""``iso_ms`` (the ``ts`` of every state message) formats a whole second once; the result must stay
exactly what ``datetime`` gives, including microsecond rounding at millisecond and second edges."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from bcc_common.timefmt import iso_ms


def by_datetime(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_iso_ms_equals_datetime_formatting() -> None:
    rng = random.Random(7)
    samples = [rng.uniform(0, 4e9) for _ in range(20_000)]
    samples += [1_764_000_000 + rng.random() * 5 for _ in range(20_000)]  # many in the same second
    samples += [1.9999995, 1.0000005, 0.0, 1_700_000_000.9999996, 1_700_000_000.0009995, 12.5, 86_399.9995]
    samples += [round(s, 3) for s in samples[:5_000]] + [int(s) for s in samples[:100]]
    for ts in samples:
        assert iso_ms(ts) == by_datetime(ts), ts


def test_iso_ms_of_datetimes_and_out_of_range() -> None:
    wib = timezone(timedelta(hours=7))
    assert iso_ms(datetime(2026, 12, 4, 19, 0, 0, 123_999, tzinfo=wib)) == "2026-12-04T12:00:00.123Z"
    assert iso_ms(-1.5) == by_datetime(-1.5)
