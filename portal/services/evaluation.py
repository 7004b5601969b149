"""The monthly evaluation asked for by the city council: per category and agency, for one month (WIB).

Counts refer to the reports *received* in the month, with their state as of now.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from portal.models import Proposal, ProposalEntry, ProposalReport, Report
from portal.reference import Reference
from portal.services.deadlines import WIB
from portal.services.proposals import ALL_STAGES, Aggregate, aggregates

_MONTH = re.compile(r"\A([0-9]{4})-(0[1-9]|1[0-2])\Z")


@dataclass
class Outcomes:
    """Reports received and what became of them: every resolution, or still open (they add up)."""

    received: int = 0
    resolved_direct: int = 0
    needs_budget: int = 0
    rejected: int = 0
    duplicate: int = 0
    still_open: int = 0


@dataclass
class Row(Outcomes):
    category: str = ""
    agency: str = ""
    verified: int = 0
    verified_on_time: int = 0
    median_hours_to_verify: float | None = None
    median_hours_to_close: float | None = None
    deadlines_missed: int = 0
    responded: int = 0  # answered by the agency (a response, or closed after dispatch)
    responded_on_time: int = 0
    rated_by_reporter: int = 0  # closed reports the reporter gave a verdict on
    reporter_says_solved: int = 0


# The CSV's columns: who first, then the counts.
CSV_COLUMNS = ["category", "agency", *(f.name for f in fields(Row) if f.name not in ("category", "agency"))]


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """UTC start and end of a ``YYYY-MM`` month in Binjai's time zone; ValueError when malformed.

    Strict: ASCII digits only and nothing around them (``int`` would take full-width digits, spaces and
    a trailing newline, which then reach the CSV's file name header), years 1970 to 9998 (a month
    whose bounds exist in UTC)."""
    found = _MONTH.match(month)
    if found is None:
        raise ValueError(f"not a YYYY-MM month: {month!r}")
    year, mon = int(found[1]), int(found[2])
    if not 1970 <= year <= 9998:
        raise ValueError(f"month out of range: {month!r}")
    start = datetime.combine(date(year, mon, 1), time(), WIB)
    end = datetime.combine(date(year + mon // 12, mon % 12 + 1, 1), time(), WIB)
    return start, end


def _median_hours(values: list[float]) -> float | None:
    return round(statistics.median(values) / 3600, 1) if values else None


def evaluate(db: Session, ref: Reference, month: str) -> list[Row]:
    start, end = month_bounds(month)
    reports = db.scalars(select(Report).where(Report.created_at >= start, Report.created_at < end))
    rows: dict[tuple[str, str], Row] = {}
    verify_s: dict[tuple[str, str], list[float]] = {}
    close_s: dict[tuple[str, str], list[float]] = {}
    for r in reports:
        agency = r.agency or (ref.categories[r.category].agency if r.category in ref.categories else "")
        key = (r.category, agency)
        row = rows.setdefault(key, Row(category=r.category, agency=agency))
        row.received += 1
        if r.verified_at is not None:
            row.verified += 1
            row.verified_on_time += not r.verify_late
            verify_s.setdefault(key, []).append((r.verified_at - r.created_at).total_seconds())
        if r.status == "closed" and r.closed_at is not None:
            close_s.setdefault(key, []).append((r.closed_at - r.created_at).total_seconds())
            if r.resolution in ("resolved_direct", "needs_budget", "rejected", "duplicate"):
                setattr(row, r.resolution, getattr(row, r.resolution) + 1)
        else:
            row.still_open += 1
        row.deadlines_missed += int(r.verify_late) + int(r.respond_late)
        if r.responded_at is not None:
            row.responded += 1
            row.responded_on_time += not r.respond_late
        if r.feedback is not None:  # given on a closure, cleared by a reopen: the latest closure's
            row.rated_by_reporter += 1
            row.reporter_says_solved += r.feedback == "solved"
    for key, row in rows.items():
        row.median_hours_to_verify = _median_hours(verify_s.get(key, []))
        row.median_hours_to_close = _median_hours(close_s.get(key, []))
    return sorted(rows.values(), key=lambda row: (row.category, row.agency))


def totals(rows: list[Row]) -> Row:
    """The sum of every count (medians are not summed: None); ``category`` and ``agency`` empty."""
    total = Row(category="", agency="")
    for row in rows:
        for f in fields(Row):
            if f.type == "int":
                setattr(total, f.name, getattr(total, f.name) + getattr(row, f.name))
    return total


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    return out.getvalue()


# What the evaluation's bars are made of: every resolution, and what is still open (they add up to
# "received"), in the order the chart stacks them.
SEGMENTS: tuple[str, ...] = ("resolved_direct", "needs_budget", "rejected", "duplicate", "still_open")


@dataclass
class MonthCount(Outcomes):
    month: str = ""  # YYYY-MM


def months_back(month: str, count: int) -> list[str]:
    """``count`` months ending with ``month`` (YYYY-MM), oldest first."""
    year, mon = (int(x) for x in month.split("-"))
    out = []
    for k in range(count - 1, -1, -1):
        y, m = divmod(year * 12 + (mon - 1) - k, 12)
        out.append(f"{y:04d}-{m + 1:02d}")
    return out


def trend(db: Session, month: str, count: int = 12) -> list[MonthCount]:
    """Reports received in each of the ``count`` months up to ``month`` (WIB), by their state now."""
    chosen = months_back(month, count)
    start, end = month_bounds(chosen[0])[0], month_bounds(month)[1]
    counts = {m: MonthCount(month=m) for m in chosen}
    query = select(Report.created_at, Report.status, Report.resolution).where(
        Report.created_at >= start, Report.created_at < end
    )
    for created_at, status, resolution in db.execute(query):
        found = counts.get(created_at.astimezone(WIB).strftime("%Y-%m"))
        if found is None:
            continue
        found.received += 1
        key = resolution if status == "closed" and resolution in SEGMENTS else "still_open"
        setattr(found, key, getattr(found, key) + 1)
    return list(counts.values())


@dataclass
class AgencyRate:
    agency: str
    verified: int
    verified_on_time: int
    responded: int
    responded_on_time: int

    @staticmethod
    def _pct(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def verify_pct(self) -> float | None:
        return self._pct(self.verified_on_time, self.verified)

    @property
    def respond_pct(self) -> float | None:
        return self._pct(self.responded_on_time, self.responded)


def agency_rates(rows: list[Row]) -> list[AgencyRate]:
    """On-time rates per agency over the month's rows (verification: 3 working days; response: 5)."""
    by: dict[str, AgencyRate] = {}
    for row in rows:
        rate = by.setdefault(row.agency, AgencyRate(row.agency, 0, 0, 0, 0))
        rate.verified += row.verified
        rate.verified_on_time += row.verified_on_time
        rate.responded += row.responded
        rate.responded_on_time += row.responded_on_time
    return sorted(by.values(), key=lambda r: r.agency)


def agency_rate(db: Session, ref: Reference, agency: str, month: str) -> AgencyRate:
    """The on-time rates of one agency in the month, counted in SQL: what :func:`agency_rates` gives for
    it over :func:`evaluate`'s rows (a report counts for its agency, before dispatch its category's),
    without reading every report of the month."""
    start, end = month_bounds(month)
    categories = [key for key, c in ref.categories.items() if c.agency == agency]
    undispatched = Report.agency.is_(None) | (Report.agency == "")
    theirs = (Report.agency == agency) | (undispatched & Report.category.in_(categories))
    verified, responded = Report.verified_at.is_not(None), Report.responded_at.is_not(None)
    counts = db.execute(
        select(
            func.count(case((verified, 1))),
            func.count(case((verified & ~Report.verify_late, 1))),
            func.count(case((responded, 1))),
            func.count(case((responded & ~Report.respond_late, 1))),
        ).where(Report.created_at >= start, Report.created_at < end, theirs)
    ).one()
    return AgencyRate(agency, *(int(n or 0) for n in counts))


# ---- the budget view: what became of the month's needs-budget closures ----------------------------------
@dataclass
class BudgetRow:
    """Of the reports closed as ``needs_budget`` in the month (WIB), per agency: how many, how many are
    carried by a development proposal, how many distinct proposals those are, how many of them reached
    each stage (portal.services.proposals.ALL_STAGES; as of now), rupiah estimated and funded."""

    agency: str
    closures: int = 0
    with_proposal: int = 0
    proposals: int = 0
    reached: dict[str, int] = field(default_factory=dict)
    estimated: int = 0
    funded: int = 0


def budget(db: Session, ref: Reference, month: str) -> list[BudgetRow]:
    start, end = month_bounds(month)
    closed = db.execute(
        select(Report, ProposalReport.proposal_id)
        .outerjoin(ProposalReport, ProposalReport.report_id == Report.id)
        .where(Report.resolution == "needs_budget", Report.closed_at >= start, Report.closed_at < end)
    ).all()
    ids = {pid for _r, pid in closed if pid is not None}
    found = db.scalars(select(Proposal).where(Proposal.id.in_(ids))).all() if ids else []
    by_id = {p.id: p for p in found}
    reached: dict[int, set[str]] = {pid: {"proposed"} for pid in ids}
    if ids:
        for pid, stage in db.execute(
            select(ProposalEntry.proposal_id, ProposalEntry.stage).where(
                ProposalEntry.proposal_id.in_(ids), ProposalEntry.stage.is_not(None)
            )
        ):
            if stage:
                reached[pid].add(stage)
    rows: dict[str, BudgetRow] = {}
    counted: set[int] = set()
    for report, pid in closed:
        proposal = by_id.get(pid) if pid is not None else None
        agency = proposal.agency if proposal else (report.agency or _category_agency(ref, report.category))
        row = rows.setdefault(agency, BudgetRow(agency, reached={s: 0 for s in ALL_STAGES}))
        row.closures += 1
        if proposal is None:
            continue
        row.with_proposal += 1
        if proposal.id in counted:  # several of the month's reports may make one proposal
            continue
        counted.add(proposal.id)
        row.proposals += 1
        for stage in reached[proposal.id]:
            row.reached[stage] = row.reached.get(stage, 0) + 1
        row.estimated += proposal.estimated_cost or 0
        row.funded += proposal.funded_amount or 0
    return sorted(rows.values(), key=lambda row: row.agency)


def _category_agency(ref: Reference, category: str) -> str:
    return ref.categories[category].agency if category in ref.categories else ""


def budget_totals(rows: list[BudgetRow]) -> BudgetRow:
    total = BudgetRow("", reached={s: 0 for s in ALL_STAGES})
    for row in rows:
        total.closures += row.closures
        total.with_proposal += row.with_proposal
        total.proposals += row.proposals
        total.estimated += row.estimated
        total.funded += row.funded
        for stage, n in row.reached.items():
            total.reached[stage] = total.reached.get(stage, 0) + n
    return total


BUDGET_COLUMNS = ("agency", "closures", "with_proposal", "proposals")


def budget_csv(rows: list[BudgetRow]) -> str:
    """One line per agency and a total line (agency ``TOTAL``); a column per stage reached; rupiah."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*BUDGET_COLUMNS, *(f"reached_{s}" for s in ALL_STAGES), "estimated_idr", "funded_idr"])
    total = budget_totals(rows)
    total.agency = "TOTAL"
    for row in [*rows, total]:
        writer.writerow(
            [
                row.agency,
                row.closures,
                row.with_proposal,
                row.proposals,
                *(row.reached.get(s, 0) for s in ALL_STAGES),
                row.estimated,
                row.funded,
            ]
        )
    return out.getvalue()


# ---- the yearly view: the proposals of one budget year ----------------------------------------------------
@dataclass
class YearView:
    """The proposals of budget year ``year`` per agency and per kecamatan (how many at each stage now,
    rupiah estimated and funded; portal.services.proposals.aggregates) and their total."""

    year: int
    agency: list[Aggregate]
    kecamatan: list[Aggregate]
    total: Aggregate


def budget_years(db: Session) -> list[int]:
    """The budget years that have proposals, newest first."""
    return [
        int(y)
        for y in db.scalars(select(Proposal.budget_year).distinct().order_by(Proposal.budget_year.desc()))
    ]


def yearly(db: Session, year: int) -> YearView:
    groups = aggregates(db, year)
    total = Aggregate("TOTAL")
    for agg in groups["agency"]:
        total.count += agg.count
        total.estimated += agg.estimated
        total.funded += agg.funded
        total.stages.update(agg.stages)
    return YearView(year, groups["agency"], groups["kecamatan"], total)


def yearly_csv(view: YearView) -> str:
    """One line per agency, one per kecamatan, and the total (group ``total``, key ``TOTAL``): proposals,
    one column per stage (where they stand now), rupiah estimated and funded."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["budget_year", "group", "key", "proposals", *ALL_STAGES, "estimated_idr", "funded_idr"])
    lines = [("agency", a) for a in view.agency] + [("kecamatan", k) for k in view.kecamatan]
    for group, agg in [*lines, ("total", view.total)]:
        stages = [agg.stages.get(s, 0) for s in ALL_STAGES]
        writer.writerow([view.year, group, agg.key, agg.count, *stages, agg.estimated, agg.funded])
    return out.getvalue()
