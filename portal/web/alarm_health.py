"""Alarm health for the operators and admins (``/konsol/kesehatan-alarm``, docs/alarms.md "Alarm
health"): EEMUA 191's measures of the last 24 hours, computed from the alarm history in the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from bcc_contract.alarm_health import CHATTER_TRANSITIONS, CHATTER_WINDOW_S, STANDING_S
from portal.models import User
from portal.services.alarm_health import alarm_health
from portal.web.deps import LangDep, NowDep, RoleGuard, SessionDep, render

router = APIRouter(prefix="/konsol", default_response_class=HTMLResponse)
HealthUser = Annotated[User, Depends(RoleGuard("admin", "operator"))]
# EEMUA 191: about one alarm per 10 minutes is manageable for one operator; 10 or more in 10 minutes
# is a flood.
MANAGEABLE_PER_HOUR = 6.0


@router.get("/kesehatan-alarm")
def health_page(request: Request, lang: LangDep, db: SessionDep, now: NowDep, user: HealthUser) -> Response:
    health = alarm_health(db, now)
    context = {
        "health": health,
        "manageable": MANAGEABLE_PER_HOUR,
        "chatter_transitions": CHATTER_TRANSITIONS,
        "chatter_window_s": int(CHATTER_WINDOW_S),
        "standing_h": int(STANDING_S // 3600),
        "now": now,
    }
    return render(request, lang, "console/alarm_health.html", context)
