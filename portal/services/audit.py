"""The command audit of the operator console: one row per command, written when it is sent (``pending``)
and completed when the gateway answers (or the console gives up waiting: ``timeout``)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import CommandAudit, User

PAGE_SIZE = 100
CSV_COLUMNS = (
    "at",
    "username",
    "action",
    "device",
    "command",
    "transaction",
    "status",
    "error",
    "readback",
    "finished_at",
)


def record(
    db: Session,
    user: User | None,
    transaction: str,
    device: str,
    action: str,
    payload: dict[str, Any],
    at: datetime,
    username: str = "",
) -> CommandAudit:
    """A new ``pending`` row; ``user`` is None for schedules (then ``username`` names the schedule)."""
    row = CommandAudit(
        transaction=transaction,
        at=at,
        user_id=user.id if user else None,
        username=user.username if user else username[:64],
        action=action[:200],
        device=device,
        command=json.dumps(payload, separators=(",", ":")),
        status="pending",
        error="",
        readback="",
    )
    db.add(row)
    db.commit()
    return row


def finish(db: Session, transaction: str, status: str, error: str, readback: str, at: datetime) -> None:
    row = db.scalars(select(CommandAudit).where(CommandAudit.transaction == transaction)).one_or_none()
    if row is None or row.status != "pending":
        return
    row.status = status
    row.error = error
    row.readback = readback
    row.finished_at = at
    db.commit()


def get(db: Session, transaction: str) -> CommandAudit | None:
    return db.scalars(select(CommandAudit).where(CommandAudit.transaction == transaction)).one_or_none()


@dataclass(frozen=True)
class AuditFilter:
    username: str = ""
    device: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1


def query(db: Session, flt: AuditFilter, limit: int | None = PAGE_SIZE) -> tuple[list[CommandAudit], int]:
    """Rows matching the filter, newest first, and the total count."""
    stmt = select(CommandAudit)
    if flt.username:
        stmt = stmt.where(CommandAudit.username == flt.username)
    if flt.device:
        stmt = stmt.where(CommandAudit.device == flt.device)
    if flt.status:
        stmt = stmt.where(CommandAudit.status == flt.status)
    if flt.since is not None:
        stmt = stmt.where(CommandAudit.at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(CommandAudit.at < flt.until)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    stmt = stmt.order_by(CommandAudit.at.desc(), CommandAudit.id.desc())
    if limit is not None:
        stmt = stmt.offset((max(flt.page, 1) - 1) * limit).limit(limit)
    return list(db.scalars(stmt)), total


def recent(db: Session, limit: int = 10) -> list[CommandAudit]:
    return list(db.scalars(select(CommandAudit).order_by(CommandAudit.id.desc()).limit(limit)))


def to_csv(rows: list[CommandAudit]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.at.isoformat(),
                _cell(r.username),
                _cell(r.action),
                r.device,
                _cell(r.command),
                _cell(r.transaction),
                r.status,
                _cell(r.error),
                _cell(r.readback),
                r.finished_at.isoformat() if r.finished_at else "",
            ]
        )
    return out.getvalue()


def _cell(value: str) -> str:
    """No spreadsheet formulas from stored text (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
