"""Reporters' personal data seen by staff: the contact-view access log and redaction of citizen text.

Indonesia's personal-data law (UU PDP 27/2022) asks the controller to know who processed personal
data: every time a staff page shows a reporter's name, phone or e-mail, a ``contact_views`` row names
the viewer and the time (admins read the log). Staff who find personal data typed into a report's
title or text (a neighbour's name, an ID number) replace each such phrase with a marker; the original
text is kept in ``redactions`` with who and when, and only admins see it. Redaction only removes
phrases of the citizen's own text: it cannot put words in the citizen's mouth.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import Forbidden, InvalidInput
from portal.models import ContactView, Redaction, Report, ReportEntry, User

MARKER = "[disamarkan]"
FIELDS = ("title", "description")
LOG_PAGE = 200


def has_contact(report: Report) -> bool:
    return bool(report.contact_name or report.contact_phone or report.contact_email)


def log_contact_view(db: Session, user: User, report: Report, now: datetime) -> None:
    """Record that ``user`` was shown the contact details of ``report`` (committed)."""
    db.add(ContactView(report_id=report.id, user_id=user.id, username=user.username, at=now))
    db.commit()


def contact_views(db: Session, report_id: int | None = None) -> list[tuple[ContactView, str]]:
    """The latest views (newest first) with each report's tracking code; one report's if given."""
    query = select(ContactView, Report.code).join(Report, Report.id == ContactView.report_id)
    if report_id is not None:
        query = query.where(ContactView.report_id == report_id)
    rows = db.execute(query.order_by(ContactView.id.desc()).limit(LOG_PAGE))
    return [(view, code) for view, code in rows]


def redact(
    db: Session, user: User, report: Report, field: str, phrases_text: str, now: datetime
) -> Redaction:
    """Replace every occurrence of each phrase (one per line) in ``report``'s ``field`` with
    :data:`MARKER`; the original goes to ``redactions``; a history line says the text was redacted."""
    if user.role not in ("admin", "agency"):
        raise Forbidden(user.role)
    if field not in FIELDS:
        raise InvalidInput({"field": "err_redact_field"})
    phrases = [p.strip() for p in phrases_text.splitlines() if p.strip()]
    original: str = getattr(report, field)
    if not phrases:
        raise InvalidInput({"phrases": "err_redact_empty"})
    if any(p not in original for p in phrases):
        raise InvalidInput({"phrases": "err_redact_missing"})
    redacted = original
    for phrase in sorted(phrases, key=len, reverse=True):  # longest first: overlapping phrases
        redacted = redacted.replace(phrase, MARKER)
    if field == "title" and len(redacted) > 200:
        raise InvalidInput({"phrases": "err_redact_missing"})
    row = Redaction(
        report_id=report.id, field=field, original=original, user_id=user.id, username=user.username, at=now
    )
    db.add(row)
    setattr(report, field, redacted)
    report.entries.append(
        ReportEntry(kind="redacted", at=now, actor_id=user.id, actor_label="admin", body="")
    )
    report.updated_at = now
    db.commit()
    return row


def redactions_of(db: Session, viewer: User, report_id: int) -> list[Redaction]:
    """The originals of a report's redactions: admins only (others get an empty list)."""
    if viewer.role != "admin":
        return []
    query = select(Redaction).where(Redaction.report_id == report_id).order_by(Redaction.id)
    return list(db.scalars(query))
