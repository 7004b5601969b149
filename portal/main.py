"""The FastAPI application: ``create_app(settings)`` wires database, templates, middleware, routes, MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from portal.config import Settings
from portal.db import make_engine, session_factory
from portal.mqtt import MqttEventSink
from portal.reference import load_reference
from portal.services.deadlines import WIB
from portal.services.events import NullSink
from portal.web import errors, open311, public, staff
from portal.web.middleware import BodyLimitMiddleware, CsrfCookieMiddleware, SecurityHeadersMiddleware
from portal.web.ratelimit import RateLimiter

HERE = Path(__file__).resolve().parent


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the portal. ``clock``/``monotonic`` are replaceable for tests (the only fakes we use)."""
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if settings.mqtt is not None:
            sink = MqttEventSink(settings.mqtt)
            sink.start()
            app.state.events = sink
            task = asyncio.create_task(sink.run_backlog(app.state.sessions, clock), name="portal-backlog")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                app.state.events.stop()
                app.state.events = NullSink()
            engine.dispose()

    app = FastAPI(
        title="BCC citizen portal",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["wib"] = lambda ts: ts.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB") if ts else ""
    app.state.settings = settings
    app.state.reference = load_reference()
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.clock = clock
    app.state.events = NullSink()
    app.state.templates = Jinja2Templates(env=env)
    app.state.submit_limiter = RateLimiter(settings.submissions_per_hour, 3600, monotonic)
    app.state.login_limiter = RateLimiter(20, 900, monotonic)
    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(open311.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)
    # Added last = outermost: the cap applies before anything else sees the body.
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookie_secure)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
