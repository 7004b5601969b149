"""Report lifecycle events and backlog gauges for Grafana, in the schema of docs/portal.md.

The payloads carry keys, codes, durations and counts only: never a name, phone, e-mail, text or photo.
Services hand events to an :class:`EventSink` after their transaction commits; the MQTT publisher
(held by the portal's runtime, portal/runtime.py) is the production sink, and a failing sink never
fails the caller.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import OPEN_STATUSES, Report

EventName = Literal["created", "verified", "dispatched", "responded", "closed", "reopened"]


class ReportFacts(Protocol):
    """What an event says about its report: a stored :class:`Report`, or the intake's ``NewReport``."""

    @property
    def code(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def agency(self) -> str | None: ...
    @property
    def kecamatan(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def verify_late(self) -> bool: ...
    @property
    def respond_late(self) -> bool: ...


class EventSink(Protocol):
    def report_event(self, payload: dict[str, Any]) -> None:
        """Publish one lifecycle event (must not raise)."""

    def backlog_changed(self) -> None:
        """Ask for a fresh backlog gauge soon (must not raise)."""


class NullSink:
    """Sink used when MQTT is not configured (development, CLI)."""

    def report_event(self, payload: dict[str, Any]) -> None:
        return None

    def backlog_changed(self) -> None:
        return None


def stage(db: Session, sink: EventSink, event: EventName, code: str, now: datetime) -> None:
    """Before the commit of the transaction that makes ``event`` happen: let the sink add rows that must
    commit with it (the reporter-notification outbox, portal.services.notify), if it has any."""
    staging = getattr(sink, "stage", None)
    if staging is not None:
        staging(db, event, code, now)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def event_payload(event: EventName, report: ReportFacts, now: datetime) -> dict[str, Any]:
    """The ``bcc/reports/events`` payload for ``report`` right after ``event``.

    ``late`` tells whether the step this event completes missed its deadline: verification for
    ``verified``, the agency's response for ``responded``, either of them for ``closed``.
    """
    late = {
        "verified": report.verify_late,
        "responded": report.respond_late,
        "closed": report.verify_late or report.respond_late,
    }.get(event, False)
    return {
        "event": event,
        "report": report.code,
        "category": report.category,
        "agency": report.agency,
        "kecamatan": report.kecamatan,
        "status": report.status,
        "resolution": report.resolution,
        "duration_s": None if event == "created" else round((now - report.created_at).total_seconds(), 3),
        "late": bool(late),
        "ts": iso(now),
    }


def emit(sink: EventSink, event: EventName, report: ReportFacts, now: datetime) -> None:
    if isinstance(sink, NullSink):  # no MQTT: no payload to build (every submission passes here)
        return
    sink.report_event(event_payload(event, report, now))
    sink.backlog_changed()


def backlog(db: Session, now: datetime) -> dict[str, Any]:
    """The retained ``bcc/reports/backlog`` gauge: open reports by status and category, overdue counts."""
    rows = db.execute(
        select(Report.status, Report.category, func.count())
        .where(Report.status.in_(OPEN_STATUSES))
        .group_by(Report.status, Report.category)
    ).all()
    by_status: Counter[str] = Counter({s: 0 for s in OPEN_STATUSES})
    by_category: Counter[str] = Counter()
    for status, category, n in rows:
        by_status[status] += n
        by_category[category] += n
    overdue_verification = db.scalar(
        select(func.count()).where(Report.status == "submitted", Report.verify_due < now)
    )
    overdue_response = db.scalar(
        select(func.count()).where(Report.status.in_(("verified", "dispatched")), Report.respond_due < now)
    )
    return {
        "ts": iso(now),
        "open": dict(by_status),
        "by_category": dict(by_category),
        "overdue_verification": int(overdue_verification or 0),
        "overdue_response": int(overdue_response or 0),
    }
