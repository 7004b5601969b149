"""The FastAPI application: ``create_app(settings)`` wires database, templates, middleware, routes, MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
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
from portal.services.report_writer import ReportWriter
from portal.services.notify import Notifier, NotifyingSink, SmtpSettings
from portal.services.ratelimit import RateLimiter
from portal.services.room import LiveRoom, load_plan
from portal.services.scenes import load_scenes, run_schedules
from portal.web import console, errors, open311, public, staff, wall
from portal.web.fastpath import ReportFastPath
from portal.web.middleware import BodyLimitMiddleware, CsrfCookieMiddleware, SecurityHeadersMiddleware

HERE = Path(__file__).resolve().parent


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    smtp: SmtpSettings | None = None,
) -> FastAPI:
    """Build the portal. ``clock`` is replaceable for tests (the only fakes we use);
    ``smtp`` enables reporter e-mail notifications (portal/services/notify.py)."""
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        schedules: asyncio.Task[None] | None = None
        app.state.room.attach(asyncio.get_running_loop())
        await asyncio.to_thread(app.state.report_writer.start)  # the writer process (portal.services.report_writer)
        if settings.mqtt is not None:
            sink = MqttEventSink(settings.mqtt, room=app.state.room)
            sink.start()
            app.state.events = sink
            app.state.commands = sink
            task = asyncio.create_task(sink.run_backlog(app.state.sessions, clock), name="portal-backlog")
            schedules = asyncio.create_task(
                run_schedules(
                    app.state.scenes,
                    app.state.room,
                    sink,
                    app.state.sessions,
                    clock,
                    settings.schedule_check_s,
                    settings.schedule_grace_s,
                ),
                name="portal-schedules",
            )
        notifier: Notifier | None = None
        if smtp is not None:
            notifier = Notifier(smtp, app.state.sessions, settings.public_url)
            notifier.start()
            app.state.events = NotifyingSink(app.state.events, notifier)
        app.state.notifier = notifier
        try:
            yield
        finally:
            if notifier is not None:
                await asyncio.to_thread(notifier.stop)
                app.state.events = app.state.events.inner
            await app.state.report_writer.close()
            for running in (schedules, *app.state.scene_tasks):
                if running is None:
                    continue
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                app.state.events.stop()
                app.state.events = NullSink()
                app.state.commands = None
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
    app.state.commands = None  # the MqttEventSink while connected: the console publishes commands with it
    app.state.room = LiveRoom(
        load_plan(settings.site_file),
        app.state.sessions,
        clock,
        settings.mqtt.command_response_s if settings.mqtt else 5.0,
    )
    app.state.scenes = load_scenes(settings.scenes_file, app.state.room.plan)
    app.state.scene_tasks = set()  # scene runs in progress (asyncio tasks), cancelled on shutdown
    app.state.templates = Jinja2Templates(env=env)
    # rate limits live in the database (rate_hits), shared by every worker of the portal
    submit_limiter = RateLimiter("submit", settings.submissions_per_hour, timedelta(hours=1))
    app.state.report_writer = ReportWriter(app.state.sessions, lambda: app.state.events, submit_limiter)
    app.state.login_limiter = RateLimiter("login", 20, timedelta(minutes=15))
    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(open311.router)
    app.include_router(console.router)
    wall.install(app, settings)  # the video wall (/dinding): layouts checked at start, kiosk tokens
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)
    # Added last = outermost: the cap applies before anything else sees the body.
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookie_secure)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ReportFastPath)  # inside the cap; does the two above itself (portal.web.fastpath)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app as ``bcc portal serve --workers N`` starts it in each worker process (a uvicorn
    factory): settings from ``BCC_PORTAL_*``, notifications from ``BCC_PORTAL_SMTP_*``."""
    return create_app(Settings.from_env(), smtp=SmtpSettings.from_env(os.environ))
