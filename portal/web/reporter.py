"""The reporter in the browser: who counts as a report's reporter (the key, from the keys cookie of
portal.web.submission or typed), and the one-time claim of a key for reports stored before keys existed."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import update
from sqlalchemy.orm import Session

from portal.db import writer
from portal.models import Report
from portal.services import reporter_keys, visibility
from portal.web.deps import settings_of
from portal.web.submission import held_keys, remembered


@dataclass(frozen=True)
class Access:
    """Is this request the report's reporter, and the key issued to it just now (a legacy claim), which
    the response must keep in the browser (:func:`keep_key`)."""

    reporter: bool
    issued: str | None = None


def access(request: Request, db: Session, report: Report, presented: str = "") -> Access:
    """Whether the request acts as ``report``'s reporter: it presents the report's key (``presented``,
    typed or from the link, else the keys cookie). A report stored before keys existed has no key: the
    browser whose "Laporan saya" cookie lists its code (set by the portal before keys, the only trace
    of its reporter) claims one, once - the first claim wins, later requests need the key like any
    other report. Claims end when ``legacy_reporter_claims`` is off."""
    key = presented or held_keys(request).get(report.code, "")
    if not reporter_keys.legacy(report.secret_hash):
        return Access(reporter_keys.matches(key, report.secret_hash))
    if not settings_of(request).legacy_reporter_claims or report.code not in remembered(request):
        return Access(False)
    key, key_hash = reporter_keys.new_key()
    with writer(db):  # conditional: of two browsers claiming at once, one wins
        result = db.execute(
            update(Report)
            .where(Report.id == report.id, Report.secret_hash.is_(None))
            .values(secret_hash=key_hash)
            .execution_options(synchronize_session=False)
        )
        db.commit()
    if getattr(result, "rowcount", 0) != 1:
        db.refresh(report)
        return Access(False)
    report.secret_hash = key_hash
    return Access(True, key)


def may_see(request: Request, report: Report) -> bool:
    """May this request see ``report`` at all (its page, its photos, its line in "Laporan saya")? Any
    report that is not confidential; a confidential one only for its reporter (:func:`access`, without
    claiming anything: a legacy report the browser could claim counts)."""
    if visibility.is_not_confidential(report):
        return True
    if not reporter_keys.legacy(report.secret_hash):
        return reporter_keys.matches(held_keys(request).get(report.code), report.secret_hash)
    return settings_of(request).legacy_reporter_claims and report.code in remembered(request)
