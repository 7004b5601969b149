"""Erase reporters' contact details a set number of days after their report closed (UU PDP 27/2022:
personal data is kept no longer than its purpose needs).

Every portal worker runs :func:`run_periodically`; a run is claimed per job and UTC day by inserting
a ``job_runs`` row whose (job, slot) is unique, so on SQLite and PostgreSQL alike exactly one worker
erases on a given day (the other inserts fail and skip). A missed day is harmless: each run erases
everything due up to its own time. Erasure blanks the name, phone and e-mail, stamps
``contact_erased_at``, and blanks the originals kept for redacted text; the report and its history
stay (the city's records), as does the access log (which names staff, not reporters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.models import JobRun, Redaction, Report
from portal.services import jobruns

log = logging.getLogger(__name__)
JOB = "erase_contacts"


def erase_due(db: Session, now: datetime, days: int) -> int:
    """Blank the contact details of reports closed ``days`` or more ago; the number of reports."""
    cutoff = now - timedelta(days=days)
    due = (Report.status == "closed") & (Report.closed_at <= cutoff) & Report.contact_erased_at.is_(None)
    ids = list(db.scalars(select(Report.id).where(due)))
    if not ids:
        return 0
    db.execute(
        update(Report)
        .where(Report.id.in_(ids))
        .values(contact_name="", contact_phone="", contact_email="", contact_erased_at=now)
    )
    db.execute(update(Redaction).where(Redaction.report_id.in_(ids)).values(original=""))
    db.commit()
    return len(ids)


def claim(db: Session, now: datetime, worker: str) -> JobRun | None:
    """Today's run of the job for ``worker``, or None when another worker has claimed it (a claim left
    running by a worker that died is taken over: portal/services/jobruns.py)."""
    return jobruns.claim(db, JOB, now.date().isoformat(), now, worker)


def run_once(sessions: sessionmaker[Session], now: datetime, days: int, worker: str) -> int | None:
    """Claim today's run and erase; the number of reports erased, or None if another worker ran it."""
    with sessions() as db:
        run = claim(db, now, worker)
        if run is None:
            return None
        try:
            erased = erase_due(db, now, days)
        except Exception as err:
            db.rollback()
            run.result, run.detail, run.finished_at = "failed", repr(err), now
            db.commit()
            log.warning("contact erasure failed: %r", err)
            raise
        run.result, run.detail, run.finished_at = "ok", f"{erased} reports", now
        db.commit()
    log.info("contact details of %d closed reports erased (worker %s)", erased, worker)
    return erased


async def run_periodically(
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    days: int,
    check_s: float,
    stop: asyncio.Event,
) -> None:
    """Every ``check_s`` seconds, try to claim and run today's erasure (one worker wins per day), until
    ``stop`` is set. Stopping waits for a run in progress: its thread holds a database connection, which
    must be returned before the lifespan disposes of the engine."""
    worker = f"worker-{secrets.token_hex(4)}"
    while not stop.is_set():
        # a failure is logged in run_once; the next day's slot tries again
        with contextlib.suppress(Exception):
            await asyncio.to_thread(run_once, sessions, clock(), days, worker)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), check_s)
