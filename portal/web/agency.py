"""Each agency's own page (``/staf/dinas/{agency}``): its open reports with their deadlines, its on-time
rates this month and last month, its development proposals. The agency's officers and head and the
admins see it whole; the viewer role (the council) sees the totals only, as on the proposals pages
(docs/portal.md, "Agencies answer for deadlines"). The rules live in portal/services/agency.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from portal.models import AGENCY_ROLES, User
from portal.services import agency, proposals, workflow
from portal.web.deps import LangDep, NowDep, RefDep, RoleGuard, SessionDep, render

router = APIRouter(prefix="/staf", default_response_class=HTMLResponse)
AgencyPageUser = Annotated[User, Depends(RoleGuard("admin", "agency", "kepala_dinas", "viewer"))]


@router.get("/dinas")
def agencies(request: Request, lang: LangDep, ref: RefDep, user: AgencyPageUser) -> Response:
    """The list of agency pages; an officer or head goes straight to their own agency's."""
    if user.role in AGENCY_ROLES:
        return RedirectResponse(f"/staf/dinas/{user.agency}", status_code=303)
    return render(request, lang, "staff/agencies.html", {"agencies": list(ref.agencies.values())})


@router.get("/dinas/{agency_key}")
def agency_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    ref: RefDep,
    now: NowDep,
    user: AgencyPageUser,
    agency_key: str,
) -> Response:
    if agency_key not in ref.agencies:
        raise HTTPException(404, "No such agency")
    if user.role in AGENCY_ROLES and user.agency != agency_key:
        raise HTTPException(403, "Your role may not do this")
    details = user.role != "viewer"  # the council sees totals only (proposals.staff_visible)
    found = agency.view(db, ref, agency_key, now, details)
    context = {
        "view": found,
        "agency": ref.agencies[agency_key],
        "details": details,
        "rows": [(r, workflow.age_info(r, now)) for r in found.reports],
        "stages": proposals.ALL_STAGES,
    }
    return render(request, lang, "staff/agency.html", context)
