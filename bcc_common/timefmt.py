"""The UTC clock and the ISO-8601 form every BCC payload uses (``2026-12-04T12:00:00.000Z``)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock that tests replace)."""
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """``ts`` in ISO-8601 with ``Z`` for UTC and the precision it has."""
    return ts.isoformat().replace("+00:00", "Z")


_second: list[tuple[int, str]] = [(-1, "")]  # the last whole second formatted (a gateway's hot path)


def iso_ms(ts: float | datetime) -> str:
    """A POSIX timestamp or datetime in ISO-8601 UTC with milliseconds (the MQTT payloads' ``ts``)."""
    if isinstance(ts, datetime):
        return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if not 0 <= ts < 253402300800:  # 9999-12-31: datetime's own range checks and errors
        dt = datetime.fromtimestamp(ts, UTC)
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # What datetime.fromtimestamp + isoformat give (microseconds rounded half-even, then truncated to
    # milliseconds), with the date and time of the whole second formatted once per second.
    frac, whole = math.modf(ts)
    sec = int(whole)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    cached_sec, prefix = _second[0]
    if cached_sec != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second[0] = (sec, prefix)
    return f"{prefix}.{us // 1000:03d}Z"
