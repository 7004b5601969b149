"""Development proposals (usulan pembangunan): the public list and pages (``/usulan``), and the staff's
list with the council's aggregates, a proposal's page, its stage changes and cost estimates
(``/staf/usulan``). The rules live in portal/services/proposals.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from portal.errors import Forbidden, InvalidInput, NotFound, TransitionRefused
from portal.models import AGENCY_ROLES, User
from portal.reference import Lang, Reference
from portal.services import proposals
from portal.services.deadlines import WIB
from portal.web.deps import (
    CsrfDep,
    LangDep,
    NowDep,
    RefDep,
    SessionDep,
    SettingsDep,
    SinkDep,
    StaffUser,
    render,
    settings_of,
)

router = APIRouter(default_response_class=HTMLResponse)
ProposalId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _year(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) == 4 else None


def _page(text: str) -> int:
    return min(int(text), 100_000) if text.isascii() and text.isdigit() and text != "0" else 1


def _filter(
    kecamatan: str = "", agency: str = "", year: str = "", stage: str = "", page: str = "1"
) -> proposals.ProposalFilter:
    """The list's filters from the query (anything unknown filters nothing)."""
    return proposals.ProposalFilter(
        kecamatan=kecamatan,
        agency=agency,
        year=_year(year),
        stage=stage if stage in proposals.ALL_STAGES else "",
        page=_page(page),
    )


FilterDep = Annotated[proposals.ProposalFilter, Depends(_filter)]


def _filter_context(flt: proposals.ProposalFilter) -> dict[str, Any]:
    query = {"kecamatan": flt.kecamatan, "agency": flt.agency, "year": flt.year or "", "stage": flt.stage}
    return {"filter": flt, "stages": proposals.ALL_STAGES, "next_query": urlencode(query)}


# ---- public -------------------------------------------------------------------------------------------
@router.get("/usulan")
def public_list(request: Request, lang: LangDep, db: SessionDep, flt: FilterDep) -> Response:
    """Every proposal, with filters by kecamatan, agency, budget year and stage; never a report's data."""
    context = _filter_context(flt)
    rows, total = proposals.search(db, flt)
    context.update(proposals=rows, total=total, more=flt.page * proposals.PAGE_SIZE < total)
    return render(request, lang, "proposals.html", context)


@router.get("/usulan/{proposal_id}")
def public_page(request: Request, lang: LangDep, db: SessionDep, proposal_id: ProposalId) -> Response:
    """A proposal's stage timeline and its public reports (listed ones only; no personal data)."""
    try:
        proposal = proposals.get(db, proposal_id)
    except NotFound as err:
        raise HTTPException(404, "No such proposal") from err
    cycle = proposals.load_cycle(settings_of(request).planning_cycle_file)
    context = {
        "proposal": proposal,
        "timeline": [e for e in proposal.entries if e.kind in ("created", "stage")],
        "reports": proposals.public_reports(proposal),
        "calendar": _calendar(cycle, proposal.budget_year, lang),
    }
    return render(request, lang, "proposal.html", context)


MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def _calendar(cycle: proposals.Cycle, budget_year: int, lang: Lang) -> list[tuple[str, str]]:
    """(stage, "Jan-Feb 2027") for the stages with a date, in cycle order."""
    out = []
    for stage in proposals.STAGES:
        when = cycle.when(stage, budget_year)
        if when is None:
            continue
        year, months = when
        names = MONTHS[lang]
        span = names[months[0] - 1] if len(months) == 1 else f"{names[months[0] - 1]}–{names[months[-1] - 1]}"
        out.append((stage, f"{span} {year}"))
    return out


# ---- staff --------------------------------------------------------------------------------------------
@router.get("/staf/usulan")
def staff_list(request: Request, lang: LangDep, db: SessionDep, user: StaffUser, flt: FilterDep) -> Response:
    """The aggregates per kecamatan and agency for every staff role (the council's view); the list of the
    proposals this user may open (none for viewers and operators)."""
    context = _filter_context(flt)
    rows, total = proposals.search(db, flt, proposals.staff_visible(user))
    context.update(
        proposals=rows,
        total=total,
        more=flt.page * proposals.PAGE_SIZE < total,
        aggregates=proposals.aggregates(db, flt.year),
        opens=user.role in ("admin", *AGENCY_ROLES),
    )
    return render(request, lang, "staff/proposals.html", context)


def _staff_page(
    request: Request,
    lang: Lang,
    db: Session,
    user: User,
    proposal_id: int,
    now: datetime,
    error: str = "",
    status: int = 200,
) -> Response:
    try:
        proposal = proposals.get_for_staff(db, user, proposal_id)
    except NotFound as err:
        raise HTTPException(404, "No such proposal") from err
    ceiling = settings_of(request).proposal_cost_ceiling
    context = {
        "proposal": proposal,
        "error": error,
        "may_move": proposals.may_move(user),
        "may_estimate": proposals.may_estimate(user, proposal),
        "stages": proposals.ALL_STAGES,
        "priorities": proposals.PRIORITIES,
        "channels": proposals.CHANNELS,
        "next_stage": _next_stage(proposal.stage),
        "ceiling": ceiling,
        "this_year": now.astimezone(WIB).year,
    }
    return render(request, lang, "staff/proposal.html", context, status)


def _next_stage(stage: str) -> str:
    if stage in proposals.FINAL:
        return ""
    position = proposals.STAGES.index(stage) if stage in proposals.STAGES else 0
    return proposals.STAGES[position + 1]


@router.get("/staf/usulan/{proposal_id}")
def staff_page(
    request: Request, lang: LangDep, db: SessionDep, now: NowDep, user: StaffUser, proposal_id: ProposalId
) -> Response:
    return _staff_page(request, lang, db, user, proposal_id, now)


@dataclass(frozen=True)
class StaffAction:
    """What every proposal change needs: the request, its language, session, reference data, time and
    staff member (a dependency, so the three change routes name only their own fields)."""

    request: Request
    lang: Lang
    db: Session
    ref: Reference
    now: datetime
    user: User
    ceiling: int

    def run(self, proposal_id: int, action: Callable[[], object]) -> Response:
        """Run a change; a refusal shows the page again with the reason, nothing stored."""
        db = self.db
        try:
            action()
        except NotFound as err:
            raise HTTPException(404, "No such proposal") from err
        except Forbidden as err:
            db.rollback()
            raise HTTPException(403, "Your role may not do this") from err
        except InvalidInput as err:
            db.rollback()
            error = next(iter(err.errors.values()))
            return _staff_page(self.request, self.lang, db, self.user, proposal_id, self.now, error, 400)
        except TransitionRefused as err:
            db.rollback()
            return _staff_page(self.request, self.lang, db, self.user, proposal_id, self.now, str(err), 409)
        return RedirectResponse(f"/staf/usulan/{proposal_id}", status_code=303)


def _staff_action(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    ref: RefDep,
    settings: SettingsDep,
    now: NowDep,
    user: StaffUser,
) -> StaffAction:
    return StaffAction(request, lang, db, ref, now, user, settings.proposal_cost_ceiling)


ActionDep = Annotated[StaffAction, Depends(_staff_action)]


@router.post("/staf/usulan/{proposal_id}/tahap", dependencies=[CsrfDep])
def move(
    ctx: ActionDep,
    sink: SinkDep,
    proposal_id: ProposalId,
    stage: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    funded: Annotated[str, Form()] = "",
    budget_year: Annotated[str, Form()] = "",
) -> Response:
    """Bappeda and admins: the next stage (an admin: any stage), or rejected / deferred with a reason."""
    return ctx.run(
        proposal_id,
        lambda: proposals.move(
            ctx.db,
            ctx.ref,
            ctx.user,
            proposal_id,
            stage,
            note,
            sink,
            ctx.now,
            ceiling=ctx.ceiling,
            funded=funded,
            budget_year=budget_year,
        ),
    )


@router.post("/staf/usulan/{proposal_id}/biaya", dependencies=[CsrfDep])
def estimate(
    ctx: ActionDep,
    proposal_id: ProposalId,
    cost: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """The proposal's agency (or an admin): the estimated cost in rupiah."""
    return ctx.run(
        proposal_id,
        lambda: proposals.estimate(
            ctx.db, ctx.ref, ctx.user, proposal_id, cost, note, ctx.now, ceiling=ctx.ceiling
        ),
    )


@router.post("/staf/usulan/{proposal_id}/ubah", dependencies=[CsrfDep])
def edit(
    ctx: ActionDep,
    proposal_id: ProposalId,
    title: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "",
    agency: Annotated[str, Form()] = "",
) -> Response:
    """Bappeda and admins: title, priority, channel (Musrenbang level or pokir DPRD), agency."""
    return ctx.run(
        proposal_id,
        lambda: proposals.edit(
            ctx.db,
            ctx.ref,
            ctx.user,
            proposal_id,
            ctx.now,
            title=title,
            priority=priority,
            channel=channel,
            agency=agency,
        ),
    )
