"""Staff-side services: the queue with deadline ages, and verify -> dispatch -> respond -> close.

Every transition appends a ``ReportEntry`` naming the staff member and the time, commits, and then emits
the lifecycle event. Who may do what is checked here as well as in the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.orm import Session, selectinload

from portal.errors import Forbidden, InvalidInput, NotFound, TransitionRefused
from portal.models import AGENCY_ROLES, OPEN_STATUSES, RESOLUTIONS, Report, ReportEntry, User
from portal.reference import Reference, load_reference
from portal.services import agency as agency_mail
from portal.services import deadlines, proposals, visibility
from portal.services.events import EventSink, emit, stage
from portal.services.reports import normalize_code
from portal.services.textclean import clean_text

PAGE_SIZE = 50


def visible_to(user: User) -> ColumnElement[bool]:
    """SQL condition for the reports this staff member may see."""
    if user.role == "admin":
        return true()
    if user.role in AGENCY_ROLES:  # officers and the head of the agency: what was dispatched to it
        if not user.agency:
            return false()
        return (Report.agency == user.agency) & Report.dispatched_at.is_not(None)
    return visibility.not_confidential()


def sees_contact(user: User, report: Report) -> bool:
    """Admins see contact details; the agency sees them only for reports whose reporter chose public."""
    return user.role == "admin" or (user.role == "agency" and report.privacy == "public")


def due_of(report: Report) -> datetime | None:
    """The deadline the report is working against now (None when nothing is due)."""
    if report.status in ("submitted", "verified"):
        return report.verify_due
    if report.status == "dispatched":
        return report.respond_due
    return None


@dataclass(frozen=True)
class QueueFilter:
    status: str = ""
    category: str = ""
    agency: str = ""
    kelurahan: str = ""
    min_age_days: int | None = None
    overdue: bool = False
    page: int = 1


@dataclass(frozen=True)
class QueuePage:
    reports: list[Report]
    total: int  # at most COUNT_CAP
    page: int
    pages: int
    more: bool = False  # more than ``total`` reports match: the page says "10000+"

    @property
    def has_next(self) -> bool:
        """A next page exists (past the counted pages: while this one is full)."""
        return self.page < self.pages or (self.more and len(self.reports) == PAGE_SIZE)


# The queue counts its matches only up to this many. An exact count of ~90,000 open reports cost
# PostgreSQL 30-40 ms on every page load (a scan of them all), most of the page's time at 100,000
# reports (docs/performance.md, "Portal"); past 200 pages the exact number helps nobody work the queue
# (the monthly evaluation and the backlog gauge count everything).
COUNT_CAP = 10_000


def queue(db: Session, user: User, flt: QueueFilter, now: datetime) -> QueuePage:
    conds: list[ColumnElement[bool]] = [visible_to(user)]
    if flt.status == "open":
        conds.append(Report.status.in_(OPEN_STATUSES))
    elif flt.status:
        conds.append(Report.status == flt.status)
    for column, value in (
        (Report.category, flt.category),
        (Report.agency, flt.agency),
        (Report.kelurahan, flt.kelurahan),
    ):
        if value:
            conds.append(column == value)
    if flt.min_age_days is not None:
        conds.append(Report.created_at <= now - timedelta(days=flt.min_age_days))
    if flt.overdue:
        conds.append(
            (Report.status.in_(("submitted", "verified")) & (Report.verify_due < now))
            | ((Report.status == "dispatched") & (Report.respond_due < now))
        )
    matches = select(Report.id).where(*conds).limit(COUNT_CAP + 1).subquery()
    counted = int(db.scalar(select(func.count()).select_from(matches)) or 0)
    total, more = min(counted, COUNT_CAP), counted > COUNT_CAP
    pages = max(1, -(-total // PAGE_SIZE))
    page = max(1, flt.page) if more else min(max(1, flt.page), pages)
    rows = db.scalars(
        select(Report)
        .where(*conds)
        .order_by(Report.created_at.asc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return QueuePage(list(rows), total, page, pages, more)


def get_for_staff(db: Session, user: User, report_id: int) -> Report:
    report = db.scalar(
        select(Report)
        .where(Report.id == report_id, visible_to(user))
        .options(selectinload(Report.entries).joinedload(ReportEntry.actor), selectinload(Report.photos))
    )
    if report is None:
        raise NotFound(str(report_id))
    return report


def _require(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden(user.role)


def _entry(report: Report, kind: str, user: User, now: datetime, label: str, body: str = "") -> None:
    body = clean_text(body)  # staff paste text too: keep it printable and XML-safe
    report.entries.append(ReportEntry(kind=kind, at=now, actor_id=user.id, actor_label=label, body=body))
    report.updated_at = now


def verify(db: Session, user: User, report_id: int, sink: EventSink, now: datetime) -> Report:
    _require(user, "admin")
    report = get_for_staff(db, user, report_id)
    if report.status != "submitted":
        raise TransitionRefused("err_transition")
    report.status = "verified"
    report.verified_at = now
    report.verify_late = now > report.verify_due
    _entry(report, "verified", user, now, "admin")
    stage(db, sink, "verified", report.code, now)
    db.commit()
    emit(sink, "verified", report, now)
    return report


def dispatch(
    db: Session,
    ref: Reference,
    user: User,
    report_id: int,
    agency: str,
    note: str,
    sink: EventSink,
    now: datetime,
) -> Report:
    """Forward a verified report to an agency (default: the category's agency); re-dispatch is allowed."""
    _require(user, "admin")
    report = get_for_staff(db, user, report_id)
    if report.status not in ("verified", "dispatched"):
        raise TransitionRefused("err_transition")
    agency = agency or ref.categories[report.category].agency
    if agency not in ref.agencies:
        raise InvalidInput({"agency": "err_agency"})
    report.status = "dispatched"
    report.agency = agency
    report.dispatched_at = now
    report.respond_due = deadlines.respond_due(now)
    _entry(report, "dispatched", user, now, "admin", note.strip()[:4000])
    stage(db, sink, "dispatched", report.code, now)
    agency_mail.stage_dispatch(db, ref, sink, report)  # the agency's officers are told (same transaction)
    db.commit()
    emit(sink, "dispatched", report, now)
    return report


def respond(
    db: Session, ref: Reference, user: User, report_id: int, text: str, sink: EventSink, now: datetime
) -> Report:
    """The agency's reply: shown to the citizen under the agency's name."""
    _require(user, "agency", "admin")
    report = get_for_staff(db, user, report_id)
    if report.status != "dispatched" or report.agency is None:
        raise TransitionRefused("err_transition")
    if not text.strip():
        raise InvalidInput({"body": "err_reply_required"})
    report.status = "responded"
    report.responded_at = now
    report.respond_late = report.respond_due is not None and now > report.respond_due
    _entry(report, "responded", user, now, ref.agencies[report.agency].name, text.strip()[:4000])
    stage(db, sink, "responded", report.code, now)
    db.commit()
    emit(sink, "responded", report, now)
    return report


def close(
    db: Session,
    user: User,
    report_id: int,
    resolution: str,
    note: str,
    duplicate_code: str,
    sink: EventSink,
    now: datetime,
    *,
    ref: Reference | None = None,
    proposal: str = "",
    proposal_title: str = "",
) -> Report:
    """Close with a reason; ``duplicate`` links the original report (by its tracking code);
    ``needs_budget`` joins development proposal ``proposal`` (its number) or creates one titled
    ``proposal_title`` in the same transaction (portal.services.proposals.link_on_close)."""
    _require(user, "admin")
    report = get_for_staff(db, user, report_id)
    if report.status == "closed":
        raise TransitionRefused("err_transition")
    if resolution not in RESOLUTIONS:
        raise InvalidInput({"resolution": "err_resolution"})
    if resolution in ("resolved_direct", "needs_budget") and report.status == "submitted":
        raise TransitionRefused("err_verify_first")
    if resolution == "duplicate":
        original = db.scalar(select(Report).where(Report.code == normalize_code(duplicate_code)))
        if original is None or original.id == report.id:
            raise InvalidInput({"duplicate_code": "err_duplicate_code"})
        report.duplicate_of_id = original.id
    if resolution == "needs_budget":
        proposals.link_on_close(db, ref or load_reference(), user, report, proposal, proposal_title, now)
    if report.status == "submitted" and now > report.verify_due:
        report.verify_late = True
    if report.status == "dispatched" and report.respond_due is not None and now > report.respond_due:
        report.respond_late = True
    report.status = "closed"
    report.resolution = resolution
    report.closed_at = now
    _entry(report, "closed", user, now, "admin", note.strip()[:4000])
    stage(db, sink, "closed", report.code, now)
    db.commit()
    emit(sink, "closed", report, now)
    return report


def age_info(report: Report, now: datetime) -> dict[str, Any]:
    """Age in days and the time left to the current deadline (negative when overdue)."""
    due = due_of(report)
    return {
        "age_days": (now - report.created_at).total_seconds() / 86400,
        "due": due,
        "left_hours": None if due is None else (due - now).total_seconds() / 3600,
        "overdue": due is not None and now > due,
    }
