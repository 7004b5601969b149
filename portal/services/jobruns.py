"""Claims of periodic jobs (``job_runs``): one worker per job and slot (a day), decided by the unique
(job, slot) key on every backend. A claim still ``running`` after :data:`STALE` was left by a worker
that died between its claim and its result: another worker takes it over, as the outbox's senders take
over a notification whose claim ran out (``Notifier.CLAIM``, portal/services/notify.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db import writer
from portal.models import JobRun
from portal.services.notify import Notifier

STALE = Notifier.CLAIM


def claim(db: Session, job: str, slot: str, now: datetime, worker: str) -> JobRun | None:
    """The run of ``job`` for ``slot``, claimed (committed) for ``worker``; None when another worker
    has it: finished, or running since less than :data:`STALE`."""
    row = JobRun(job=job, slot=slot, worker=worker, started_at=now, result="running", detail="")
    db.add(row)
    try:
        db.commit()
        return row
    except IntegrityError:
        db.rollback()
    with writer(db):
        taken = db.execute(
            update(JobRun)
            .where(
                JobRun.job == job,
                JobRun.slot == slot,
                JobRun.result == "running",
                JobRun.started_at < now - STALE,
            )
            .values(worker=worker, started_at=now)
        )
        db.commit()
    if not getattr(taken, "rowcount", 0):
        return None
    return db.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
