"""The FastAPI application: ``create_app(settings)`` builds the runtime, then adds routes and middleware."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bcc_common.timefmt import utc_now
from portal.config import Settings
from portal.lifespan import make_lifespan
from portal.metrics import MetricsMiddleware, RouteIndex
from portal.runtime import PortalRuntime, build_runtime
from portal.services.notify import SmtpSettings
from portal.services.sms import SmsSettings
from portal.web import (
    agency,
    alarm_health,
    console,
    errors,
    open311,
    proposals,
    public,
    staff,
    staff_admin,
    staff_auth,
    status,
    wall,
    webapp,
)
from portal.web.fastpath import ReportFastPath
from portal.web.middleware import BodyLimitMiddleware, CsrfCookieMiddleware, SecurityHeadersMiddleware

HERE = Path(__file__).resolve().parent


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    smtp: SmtpSettings | None = None,
    sms: SmsSettings | None = None,
) -> FastAPI:
    """Build the portal. ``clock`` is replaceable for tests (the only fakes we use);
    ``smtp`` enables e-mail notifications and ``sms`` SMS notifications (portal/services/notify.py)."""
    runtime = build_runtime(settings, clock)
    app = FastAPI(
        title="BCC citizen portal",
        version="1.0.0",
        lifespan=make_lifespan(runtime, smtp, sms),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime  # the app's only state: routes reach it through portal.web.deps
    include_routes(app)
    add_middleware(app, runtime)
    return app


ROUTERS = tuple(
    m.router
    for m in (
        public,
        status,
        staff_auth,
        staff,
        staff_admin,
        agency,
        proposals,
        open311,
        console,
        alarm_health,
        wall,
        webapp,
    )
)


def include_routes(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)


def add_middleware(app: FastAPI, runtime: PortalRuntime) -> None:
    settings = runtime.settings
    # Added last = outermost: the cap applies before anything else sees the body.
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookie_secure)
    app.add_middleware(SecurityHeadersMiddleware)
    # inside the cap; does the two above itself (portal.web.fastpath)
    app.add_middleware(ReportFastPath, runtime=runtime)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # outermost of ours: also counts the cap's refusals and the fast path's answers
    app.add_middleware(
        MetricsMiddleware,
        metrics=runtime.metrics,
        routes=RouteIndex.of([*app.routes, *(r for router in ROUTERS for r in router.routes)]),
    )


def app_from_env() -> FastAPI:
    """The app as ``bcc portal serve --workers N`` starts it in each worker process (a uvicorn
    factory): settings from ``BCC_PORTAL_*``, notifications from ``BCC_PORTAL_SMTP_*`` and
    ``BCC_PORTAL_SMS_*``."""
    env = os.environ
    return create_app(Settings.from_env(), smtp=SmtpSettings.from_env(env), sms=SmsSettings.from_env(env))
