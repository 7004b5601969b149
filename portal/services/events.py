"""Report lifecycle events and backlog gauges for Grafana, in the schema of docs/portal.md.

The payloads carry keys, codes (none for a confidential report), durations and counts only: never a
name, phone, e-mail, text or photo.
Services hand events to an :class:`EventSink` after their transaction commits; the MQTT publisher
(held by the portal's runtime, portal/runtime.py) is the production sink, and a failing sink never
fails the caller.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bcc_contract.reports import EventName, ReportFacts, backlog_payload, event_payload
from portal.models import OPEN_STATUSES, Report


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


def stage(db: Session, sink: EventSink, event: EventName, code: str, now: datetime, key: str = "") -> None:
    """Before the commit of the transaction that makes ``event`` happen: let the sink add rows that must
    commit with it (the reporter-notification outbox, portal.services.notify), if it has any. ``key``
    is the reporter's secret key of a new report (``created``), for the reporter's e-mail only."""
    staging = getattr(sink, "stage", None)
    if staging is not None:
        staging(db, event, code, now, key)


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
    return backlog_payload(
        now, dict(by_status), dict(by_category), int(overdue_verification or 0), int(overdue_response or 0)
    )
