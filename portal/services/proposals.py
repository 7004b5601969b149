"""Development proposals (usulan pembangunan): reports closed as ``needs_budget`` carried into the
regional planning cycle, stage by stage, up to the enacted budget (APBD) and the work done.

A proposal is created, or joined, in the very transaction that closes a report as ``needs_budget``
(:func:`link_on_close`, called by ``workflow.close``). Bappeda's staff (agency ``bappeda``) move it one
stage forward at a time, or reject or defer it (to a later budget year) with a reason; only an admin may
skip stages or go back. The officers of the proposal's agency and the admins record the estimated cost.
Every change is a ``ProposalEntry`` (who, when, the stage, the amount, the note) and commits with its
outbox rows: each linked reporter who left an e-mail is told of each stage (portal.services.notify).
Bad input raises ``InvalidInput``/``TransitionRefused`` with a message key before anything is changed.

The public sees every proposal (``/usulan``): its stage timeline, and of its reports only the listed ones
(portal.services.visibility): a confidential report is counted nowhere public, never named.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, selectinload

from portal.errors import Forbidden, InvalidInput, NotFound, TransitionRefused
from portal.models import AGENCY_ROLES, Proposal, ProposalEntry, ProposalReport, Report, User
from portal.reference import Reference
from portal.services import visibility
from portal.services.deadlines import WIB
from portal.services.events import EventSink
from portal.services.textclean import clean_text

# The planning cycle, in order (UU 25/2004, Permendagri 86/2017); months in portal/data/planning_cycle.yaml.
STAGES: tuple[str, ...] = (
    "proposed",
    "musrenbang_kelurahan",
    "musrenbang_kecamatan",
    "forum_perangkat_daerah",
    "musrenbang_kota",
    "rkpd",
    "kua_ppas",
    "apbd",
    "executed",
)
# Outcomes possible at any stage before ``executed``, each with a reason.
OUTCOMES: tuple[str, ...] = ("rejected", "deferred")
ALL_STAGES: tuple[str, ...] = STAGES + OUTCOMES
# Stages after which nothing moves any more except by an admin.
FINAL: tuple[str, ...] = ("executed", "rejected")
PRIORITIES: tuple[str, ...] = ("high", "medium", "low")
# How the proposal enters the cycle: the Musrenbang of a level, or the council's pokok-pokok pikiran.
CHANNELS: tuple[str, ...] = ("musrenbang_kelurahan", "musrenbang_kecamatan", "musrenbang_kota", "pokir_dprd")
PLANNING_AGENCY = "bappeda"
PAGE_SIZE = 50
# Whole rupiah: digits, optionally grouped by thousands with "." (Indonesian), "," or spaces; "Rp" allowed.
_AMOUNT = re.compile(r"\d+|\d{1,3}(?:\.\d{3})+|\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+")


# ---- the cycle's calendar (data) -----------------------------------------------------------------------
class CycleStage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    months: tuple[int, ...] = ()
    offset_years: int = Field(default=-1, ge=-1, le=0)


class Cycle(BaseModel):
    """Which months each stage happens in, relative to the budget year."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stages: dict[str, CycleStage]

    def months_of(self, stage: str) -> tuple[int, ...]:
        found = self.stages.get(stage)
        return found.months if found else ()

    def when(self, stage: str, budget_year: int) -> tuple[int, tuple[int, ...]] | None:
        """The year and months ``stage`` happens in for a proposal of ``budget_year`` (None: no date)."""
        found = self.stages.get(stage)
        if found is None or not found.months:
            return None
        return budget_year + found.offset_years, found.months


@cache
def load_cycle(path: Path) -> Cycle:
    """Read and check the calendar: exactly the stages of :data:`STAGES`, months 1-12 (cached)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    cycle = Cycle.model_validate(raw)
    problems = [f"missing stage {s}" for s in STAGES if s not in cycle.stages]
    problems += [f"unknown stage {s}" for s in cycle.stages if s not in STAGES]
    problems += [
        f"{s}: month {m} is not 1-12" for s, c in cycle.stages.items() for m in c.months if not 1 <= m <= 12
    ]
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return cycle


# ---- who may do what ----------------------------------------------------------------------------------
def may_move(user: User) -> bool:
    """Bappeda's staff and the admins move proposals through the stages."""
    return user.role == "admin" or (user.role == "agency" and user.agency == PLANNING_AGENCY)


def may_estimate(user: User, proposal: Proposal) -> bool:
    """The officers of the proposal's agency and the admins record its estimated cost."""
    return user.role == "admin" or (user.role == "agency" and user.agency == proposal.agency)


def staff_visible(user: User) -> ColumnElement[bool]:
    """The proposals a staff member may open: all for admins and Bappeda, its own for an agency."""
    if may_move(user):
        return true()
    if user.role in AGENCY_ROLES and user.agency:  # its officers and its head
        return Proposal.agency == user.agency
    return Proposal.id.is_(None)  # viewers and operators see the aggregates only


def _actor_label(user: User, ref: Reference) -> str:
    """What the public reads as the decider: the agency's name, or "admin"; never a person's name."""
    if user.role == "agency" and user.agency in ref.agencies:
        return ref.agencies[user.agency].name
    return "admin"


# ---- input --------------------------------------------------------------------------------------------
def parse_amount(text: str, ceiling: int, name: str) -> int:
    """Whole rupiah from what staff typed ("Rp 150.000.000", "150000000"); refused with a message key:
    negative or zero, not a number, or above ``ceiling``."""
    raw = text.strip()
    if raw[:2].lower() == "rp":
        raw = raw[2:].strip()
    if raw.startswith("-"):
        raise InvalidInput({name: "err_amount_negative"})
    if not raw.isascii() or _AMOUNT.fullmatch(raw) is None:
        raise InvalidInput({name: "err_amount_number"})
    value = int(re.sub(r"[., ]", "", raw))
    if value <= 0:
        raise InvalidInput({name: "err_amount_negative"})
    if value > ceiling:
        raise InvalidInput({name: "err_amount_ceiling"})
    return value


def _budget_year(text: str, name: str) -> int:
    raw = text.strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) == 4):
        raise InvalidInput({name: "err_budget_year"})
    return int(raw)


# ---- reading ------------------------------------------------------------------------------------------
def get(db: Session, proposal_id: int) -> Proposal:
    proposal = db.scalar(
        select(Proposal)
        .where(Proposal.id == proposal_id)
        .options(
            selectinload(Proposal.entries).joinedload(ProposalEntry.actor),
            selectinload(Proposal.links).joinedload(ProposalReport.report),
        )
    )
    if proposal is None:
        raise NotFound(str(proposal_id))
    return proposal


def get_for_staff(db: Session, user: User, proposal_id: int) -> Proposal:
    proposal = get(db, proposal_id)
    if db.scalar(select(Proposal.id).where(Proposal.id == proposal_id, staff_visible(user))) is None:
        raise NotFound(str(proposal_id))
    return proposal


def public_reports(proposal: Proposal) -> list[Report]:
    """The linked reports the public may see (listed ones only; never a confidential report)."""
    return [link.report for link in proposal.links if visibility.is_listed(link.report)]


def of_report(db: Session, report_id: int) -> Proposal | None:
    """The proposal carrying a report, if any."""
    return db.scalar(select(Proposal).join(ProposalReport).where(ProposalReport.report_id == report_id))


def stages_of_reports(db: Session, report_ids: list[int]) -> dict[int, str]:
    """report id -> its proposal's stage, for the reports that have one (one query)."""
    if not report_ids:
        return {}
    rows = db.execute(
        select(ProposalReport.report_id, Proposal.stage)
        .join(Proposal, Proposal.id == ProposalReport.proposal_id)
        .where(ProposalReport.report_id.in_(report_ids))
    ).all()
    return {rid: stage for rid, stage in rows}


@dataclass(frozen=True)
class ProposalFilter:
    kecamatan: str = ""
    agency: str = ""
    year: int | None = None
    stage: str = ""
    page: int = 1


def search(
    db: Session, flt: ProposalFilter, visible: ColumnElement[bool] | None = None
) -> tuple[list[Proposal], int]:
    """Proposals matching the filter, newest first (a page of them), and how many match."""
    conds: list[ColumnElement[bool]] = [visible if visible is not None else true()]
    if flt.kecamatan:
        conds.append(Proposal.kecamatan == flt.kecamatan)
    if flt.agency:
        conds.append(Proposal.agency == flt.agency)
    if flt.year is not None:
        conds.append(Proposal.budget_year == flt.year)
    if flt.stage:
        conds.append(Proposal.stage == flt.stage)
    total = int(db.scalar(select(func.count()).select_from(Proposal).where(*conds)) or 0)
    rows = db.scalars(
        select(Proposal)
        .where(*conds)
        .order_by(Proposal.budget_year.desc(), Proposal.id.desc())
        .limit(PAGE_SIZE)
        .offset((max(1, flt.page) - 1) * PAGE_SIZE)
    )
    return list(rows), total


@dataclass
class Aggregate:
    """Proposals of one kecamatan or agency: how many, per stage, rupiah estimated and funded."""

    key: str
    count: int = 0
    estimated: int = 0
    funded: int = 0
    stages: Counter[str] = field(default_factory=Counter)


AGGREGATE_GROUPS = {"kecamatan": Proposal.kecamatan, "agency": Proposal.agency}


def aggregates(
    db: Session, year: int | None = None, agency: str = "", groups: tuple[str, ...] = ("kecamatan", "agency")
) -> dict[str, list[Aggregate]]:
    """``{"kecamatan": [...], "agency": [...]}``: the council's view (no report, no person); of one
    budget year and of one agency when given; only the ``groups`` asked for."""
    cond = Proposal.budget_year == year if year is not None else true()
    if agency:
        cond = cond & (Proposal.agency == agency)
    out: dict[str, list[Aggregate]] = {}
    for name in groups:
        column = AGGREGATE_GROUPS[name]
        by_key: dict[str, Aggregate] = {}
        rows = db.execute(
            select(
                column,
                Proposal.stage,
                func.count(),
                func.coalesce(func.sum(Proposal.estimated_cost), 0),
                func.coalesce(func.sum(Proposal.funded_amount), 0),
            )
            .where(cond)
            .group_by(column, Proposal.stage)
            .order_by(column)
        ).all()
        for key, stage, n, estimated, funded in rows:
            agg = by_key.setdefault(key, Aggregate(key))
            agg.count += int(n)
            agg.estimated += int(estimated or 0)
            agg.funded += int(funded or 0)
            agg.stages[stage] += int(n)
        out[name] = list(by_key.values())
    return out


# ---- changes ------------------------------------------------------------------------------------------
def _entry(
    proposal: Proposal,
    kind: str,
    user: User,
    label: str,
    now: datetime,
    *,
    stage: str | None = None,
    amount: int | None = None,
    body: str = "",
) -> None:
    proposal.entries.append(
        ProposalEntry(
            kind=kind,
            stage=stage,
            amount=amount,
            at=now,
            actor_id=user.id,
            actor_label=label,
            body=clean_text(body.strip())[:4000],
        )
    )
    proposal.updated_at = now


def link_on_close(
    db: Session, ref: Reference, user: User, report: Report, join: str, title: str, now: datetime
) -> Proposal:
    """Within the transaction closing ``report`` as ``needs_budget``: join proposal ``join`` (its id) or
    create one named ``title`` (default: the report's title; a confidential report's title is never
    made public, so its proposal needs a title of its own). Raises before changing anything."""
    existing = db.scalar(select(ProposalReport).where(ProposalReport.report_id == report.id))
    if existing is not None:
        return existing.proposal
    label = _actor_label(user, ref)
    join = join.strip()
    if join:
        if not (join.isascii() and join.isdigit() and len(join) <= 9):
            raise InvalidInput({"proposal": "err_proposal"})
        proposal = db.get(Proposal, int(join))
        if proposal is None:
            raise InvalidInput({"proposal": "err_proposal"})
        if proposal.stage in FINAL:
            raise InvalidInput({"proposal": "err_proposal_final"})
    else:
        title = clean_text(title.strip())[:200]
        if not title:
            if not visibility.is_not_confidential(report):
                raise InvalidInput({"proposal_title": "err_proposal_confidential"})
            title = report.title
        agency = report.agency or ref.categories[report.category].agency
        proposal = Proposal(
            title=title,
            kecamatan=report.kecamatan,
            kelurahan=report.kelurahan,
            agency=agency,
            category=report.category,
            priority="medium",
            channel="musrenbang_kelurahan",
            budget_year=now.astimezone(WIB).year + 1,
            stage="proposed",
            stage_at=now,
            created_at=now,
            updated_at=now,
        )
        db.add(proposal)
        _entry(proposal, "created", user, label, now, stage="proposed")
    proposal.links.append(ProposalReport(report=report, linked_at=now))
    _entry(proposal, "linked", user, label, now)
    return proposal


def move(
    db: Session,
    ref: Reference,
    user: User,
    proposal_id: int,
    to: str,
    note: str,
    sink: EventSink,
    now: datetime,
    *,
    ceiling: int,
    funded: str = "",
    budget_year: str = "",
) -> Proposal:
    """Move a proposal to stage ``to`` (or reject / defer it), recording who, when and why."""
    if not may_move(user):
        raise Forbidden(user.role)
    proposal = get_for_staff(db, user, proposal_id)
    admin = user.role == "admin"
    current = proposal.stage
    if to not in ALL_STAGES:
        raise InvalidInput({"stage": "err_stage"})
    if to == current:
        raise TransitionRefused("err_stage_same")
    if current in FINAL and not admin:
        raise TransitionRefused("err_stage_final")
    amount: int | None = None
    if to in OUTCOMES:
        if not note.strip():
            raise InvalidInput({"note": "err_stage_reason"})
        if to == "deferred":
            year = _budget_year(budget_year, "budget_year")
            if year <= proposal.budget_year:
                raise InvalidInput({"budget_year": "err_defer_year"})
            proposal.budget_year = year
    else:
        # a deferred proposal re-enters the cycle where a new one starts
        position = STAGES.index(current) if current in STAGES else 0
        if STAGES.index(to) != position + 1 and not admin:
            raise TransitionRefused("err_stage_skip")
        if to == "apbd":
            if not funded.strip():
                raise InvalidInput({"funded": "err_funded_required"})
            amount = parse_amount(funded, ceiling, "funded")
            proposal.funded_amount = amount
    proposal.stage = to
    proposal.stage_at = now
    _entry(proposal, "stage", user, _actor_label(user, ref), now, stage=to, amount=amount, body=note)
    _stage_notifications(db, sink, proposal, now)
    db.commit()
    _wake(sink)
    return proposal


def estimate(
    db: Session,
    ref: Reference,
    user: User,
    proposal_id: int,
    cost: str,
    note: str,
    now: datetime,
    *,
    ceiling: int,
) -> Proposal:
    """Record the estimated cost (the agency's own proposals, or an admin)."""
    proposal = get(db, proposal_id)
    if not may_estimate(user, proposal):
        raise Forbidden(user.role)
    if proposal.stage in FINAL and user.role != "admin":
        raise TransitionRefused("err_stage_final")
    amount = parse_amount(cost, ceiling, "cost")
    proposal.estimated_cost = amount
    _entry(proposal, "cost", user, _actor_label(user, ref), now, amount=amount, body=note)
    db.commit()
    return proposal


def edit(
    db: Session,
    ref: Reference,
    user: User,
    proposal_id: int,
    now: datetime,
    *,
    title: str,
    priority: str,
    channel: str,
    agency: str,
) -> Proposal:
    """Bappeda and admins: the title, priority, channel and responsible agency; the history says what
    changed from what."""
    if not may_move(user):
        raise Forbidden(user.role)
    proposal = get_for_staff(db, user, proposal_id)
    title = clean_text(title.strip())[:200]
    problems = {}
    if not title:
        problems["title"] = "err_proposal_title"
    if priority not in PRIORITIES:
        problems["priority"] = "err_proposal_priority"
    if channel not in CHANNELS:
        problems["channel"] = "err_proposal_channel"
    if agency not in ref.agencies:
        problems["agency"] = "err_agency"
    if problems:
        raise InvalidInput(problems)
    new = {"title": title, "priority": priority, "channel": channel, "agency": agency}
    changes = [f"{k}: {getattr(proposal, k)} -> {v}" for k, v in new.items() if getattr(proposal, k) != v]
    if not changes:
        return proposal
    for key, value in new.items():
        setattr(proposal, key, value)
    _entry(proposal, "edited", user, _actor_label(user, ref), now, body="\n".join(changes))
    db.commit()
    return proposal


def _stage_notifications(db: Session, sink: EventSink, proposal: Proposal, now: datetime) -> None:
    """One outbox row per linked reporter with an e-mail, committed with the stage change."""
    staging = getattr(sink, "stage_detail", None)
    if staging is None:
        return
    for link in proposal.links:
        if link.report.contact_email:
            staging(db, "proposal", link.report.code, now, proposal.stage)


def _wake(sink: EventSink) -> None:
    wake: Any = getattr(sink, "wake", None)
    if wake is not None:
        wake()
