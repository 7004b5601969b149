"""Citizen-report vocabulary on ``<base>/reports/events`` and ``<base>/reports/backlog``.

The portal publishes these, the recorder stores them and the "Citizen reports" dashboard draws them.
Categories are data (``data/categories.yaml``, shipped with this package): a category added there is
accepted by the recorder and drawn by the dashboard without a code change.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import yaml

from bcc_common.timefmt import iso

EventName = Literal["created", "verified", "dispatched", "responded", "closed", "reopened"]
EVENTS: tuple[EventName, ...] = get_args(EventName)
Resolution = Literal["resolved_direct", "needs_budget", "rejected", "duplicate"]
RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
ReportStatus = Literal["submitted", "verified", "dispatched", "responded", "closed"]
STATUSES: tuple[ReportStatus, ...] = get_args(ReportStatus)
OPEN_STATUSES: tuple[ReportStatus, ...] = STATUSES[:-1]
CONFIDENTIAL = "confidential"  # the privacy whose report events carry no tracking code

CATEGORIES_FILE = Path(str(resources.files("bcc_contract") / "data" / "categories.yaml"))


@cache
def category_keys(path: Path = CATEGORIES_FILE) -> tuple[str, ...]:
    """The category keys of ``categories.yaml``, in file order (stored in the database, never renamed)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(data["categories"])


class ReportFacts(Protocol):
    """What an event says about its report (a stored report, or one being stored)."""

    @property
    def code(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def agency(self) -> str | None: ...
    @property
    def kecamatan(self) -> str: ...
    @property
    def privacy(self) -> str: ...
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


def event_payload(event: EventName, report: ReportFacts, now: datetime) -> dict[str, Any]:
    """The ``<base>/reports/events`` payload for ``report`` right after ``event``.

    Keys, codes, durations and counts only: never a name, phone, e-mail, text or photo. ``report`` is
    the tracking code, or None for a confidential report: the topic is read by several accounts and
    stored for years, and a confidential report must not be identifiable from it. ``late`` tells
    whether the step this event completes missed its deadline: verification for ``verified``, the
    agency's response for ``responded``, either of them for ``closed``.
    """
    late = {
        "verified": report.verify_late,
        "responded": report.respond_late,
        "closed": report.verify_late or report.respond_late,
    }.get(event, False)
    return {
        "event": event,
        "report": None if report.privacy == CONFIDENTIAL else report.code,
        "category": report.category,
        "agency": report.agency,
        "kecamatan": report.kecamatan,
        "status": report.status,
        "resolution": report.resolution,
        "duration_s": None if event == "created" else round((now - report.created_at).total_seconds(), 3),
        "late": bool(late),
        "ts": iso(now),
    }


def backlog_payload(
    now: datetime,
    open_by_status: dict[str, int],
    open_by_category: dict[str, int],
    overdue_verification: int,
    overdue_response: int,
) -> dict[str, Any]:
    """The retained ``<base>/reports/backlog`` gauge."""
    return {
        "ts": iso(now),
        "open": open_by_status,
        "by_category": open_by_category,
        "overdue_verification": overdue_verification,
        "overdue_response": overdue_response,
    }
