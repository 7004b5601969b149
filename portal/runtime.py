"""The portal's runtime: everything a running portal holds, built once by the app factory, typed.

``create_app`` builds one :class:`PortalRuntime` and stores it as the application's only state
attribute (``app.state.runtime``). Routes reach it through the typed dependencies of
``portal.web.deps`` (``RuntimeDep``, ``SessionDep``, ``SettingsDep``, ...); code holding the app (the
lifespan, tests, benchmarks) uses :func:`runtime_of`. The runtime itself is frozen: what changes while
the portal runs lives in two small mutable parts, :class:`Connections` (swapped by the lifespan when
MQTT and SMTP start and stop) and :class:`WallState` (the video wall's layouts, which admins edit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import structlog
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from portal.config import Settings
from portal.db import make_engine, session_factory
from portal.metrics import PortalMetrics
from portal.models import AGENCY_ROLES
from portal.mqtt import MqttEventSink
from portal.reference import Reference, load_reference
from portal.services.deadlines import WIB
from portal.services.events import EventSink, NullSink
from portal.services.notify import Notifier
from portal.services.photos import ensure_private_dir
from portal.services.ratelimit import RateLimiter
from portal.services.report_writer import ReportWriter
from portal.services.room import LiveRoom, load_plan
from portal.services.scenes import SceneBook, load_scenes
from portal.services.wall import (
    DEFAULT_FILE,
    KioskStore,
    WallConfig,
    WallError,
    load_effective,
    load_wall,
    override_path,
)

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(slots=True)
class Connections:
    """What the lifespan connects at start-up and takes down at shutdown (portal.lifespan)."""

    # Where lifecycle events go: NullSink, the MQTT client, or either wrapped by the e-mail notifier.
    events: EventSink = field(default_factory=NullSink)
    # The MQTT client while the portal has a broker: the console publishes commands with it.
    commands: MqttEventSink | None = None
    notifier: Notifier | None = None  # reporter e-mail, when SMTP is configured


@dataclass(slots=True)
class WallState:
    """The video wall's view-to-region assignment and its kiosk tokens (portal.web.wall)."""

    default: WallConfig  # portal/data/wall_layouts.yaml
    config: WallConfig  # the default, or the admins' override in <media_dir>
    mtime: int | None  # the override file's mtime when ``config`` was read (None: no override)
    kiosk: KioskStore
    media_dir: Path

    @classmethod
    def load(cls, settings: Settings) -> WallState:
        """Read and check the layout file and the override (an error here stops the portal's start)."""
        default = load_wall(DEFAULT_FILE)
        return cls(
            default=default,
            config=load_effective(default, settings.media_dir),
            mtime=file_mtime(override_path(settings.media_dir)),
            kiosk=KioskStore(settings.media_dir / "wall_kiosk.json", settings.secret_key.get_secret_value()),
            media_dir=settings.media_dir,
        )

    def current(self) -> WallConfig:
        """The current assignment; picks up an admin's change saved by another worker (file mtime)."""
        mtime = file_mtime(override_path(self.media_dir))
        if mtime != self.mtime:
            try:
                self.config = load_effective(self.default, self.media_dir)
            except WallError as err:
                log.warning("wall_layouts_unreadable", error=str(err))
            self.mtime = mtime
        return self.config

    def saved(self, config: WallConfig) -> None:
        """This worker stored ``config`` as the override."""
        self.config = config
        self.mtime = file_mtime(override_path(self.media_dir))

    def reset(self) -> None:
        """Back to the layout file (the override is deleted)."""
        override_path(self.media_dir).unlink(missing_ok=True)
        self.config = self.default
        self.mtime = None


def file_mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class PortalRuntime:
    settings: Settings
    reference: Reference
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]  # replaceable in tests (the only fakes we use)
    templates: Jinja2Templates
    room: LiveRoom  # the operator console's in-memory cache of the room
    scenes: SceneBook
    scene_tasks: set[asyncio.Task[Any]]  # scene runs in progress, cancelled on shutdown
    report_writer: ReportWriter  # the group-commit writer process of the report form
    login_limiter: RateLimiter  # login attempts per client address
    account_limiter: RateLimiter  # failed logins (password or second factor) per account
    public_limiter: RateLimiter  # every public write but the report form (portal.web.deps)
    wall: WallState
    connections: Connections
    metrics: PortalMetrics  # HTTP requests and latency (portal.metrics)

    def now(self) -> datetime:
        return self.clock()


def build_runtime(settings: Settings, clock: Callable[[], datetime]) -> PortalRuntime:
    """Everything the portal holds, before anything starts (the lifespan starts processes and clients)."""
    engine = make_engine(settings.database_url)  # a SQLite file is created 0600
    ensure_private_dir(settings.media_dir)  # reporters' photos: 0700, each file 0600
    sessions = session_factory(engine)
    connections = Connections()
    room = LiveRoom(
        load_plan(settings.site_file),
        sessions,
        clock,
        settings.mqtt.command_response_s if settings.mqtt else 5.0,
    )
    # rate limits live in the database (rate_hits), shared by every worker of the portal
    submit_limiter = RateLimiter("submit", settings.submissions_per_hour, timedelta(hours=1))
    return PortalRuntime(
        settings=settings,
        reference=load_reference(),
        engine=engine,
        sessions=sessions,
        clock=clock,
        templates=make_templates(),
        room=room,
        scenes=load_scenes(settings.scenes_file, room.plan),
        scene_tasks=set(),
        # the writer reads the sink per batch: the lifespan swaps it when MQTT or SMTP start and stop
        report_writer=ReportWriter(sessions, lambda: connections.events, submit_limiter),
        login_limiter=RateLimiter("login", 20, timedelta(minutes=15)),
        public_limiter=RateLimiter("public", settings.public_writes_per_hour, timedelta(hours=1)),
        account_limiter=RateLimiter("login_account", settings.account_login_attempts, timedelta(minutes=15)),
        wall=WallState.load(settings),
        connections=connections,
        metrics=PortalMetrics(),
    )


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["wib"] = lambda ts: ts.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB") if ts else ""
    # whole rupiah as Indonesians write it: Rp 1.500.000
    env.filters["rupiah"] = lambda n: "–" if n is None else "Rp " + f"{int(n):,}".replace(",", ".")
    env.globals["AGENCY_ROLES"] = AGENCY_ROLES  # an agency's officers and its head
    return Jinja2Templates(env=env)


def runtime_of(app: Starlette) -> PortalRuntime:
    """The runtime of an app built by ``portal.main.create_app``."""
    runtime: PortalRuntime = app.state.runtime
    return runtime
