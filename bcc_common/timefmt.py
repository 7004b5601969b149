"""The UTC clock and the ISO-8601 form every BCC payload uses (``2026-12-04T12:00:00.000Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock that tests replace)."""
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """``ts`` in ISO-8601 with ``Z`` for UTC and the precision it has."""
    return ts.isoformat().replace("+00:00", "Z")


def iso_ms(ts: float | datetime) -> str:
    """A POSIX timestamp or datetime in ISO-8601 UTC with milliseconds (the MQTT payloads' ``ts``)."""
    dt = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
