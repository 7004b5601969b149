"""Portal test helpers: the fake clock, settings, staff users and logins, the report form, photos, the
app with its notifier (e-mail, SMS) and its outbox, and the app under a real uvicorn."""

from __future__ import annotations

import contextlib
import io
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from bcc_common.net import free_port
from portal.config import Settings
from portal.main import create_app
from portal.models import Notification
from portal.runtime import runtime_of
from portal.services import reports, twofactor, users
from portal.services.notify import Notifier, SmtpSettings
from tests.support.sms import FakeTwilio
from tests.support.staff_login import enrol_totp, totp_code
from tests.support.wait import eventually_sync

# Monday 2 November 2026, 09:00 WIB: working-day arithmetic is easy to follow from here.
START = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
API_KEY = "test-open311-key-" + "k" * 16


class FakeClock:
    """The only fake in the portal tests: wall clock and monotonic clock, advanced by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **kwargs: float) -> None:
        delta = timedelta(**kwargs)
        self.current += delta
        self.mono += delta.total_seconds()


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "secret_key": secrets.token_hex(32),
        "media_dir": tmp_path / "media",
        "cookie_secure": False,
        "submissions_per_hour": 1000,
        "open311_api_keys": (API_KEY,),
        "public_url": "http://testserver",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    totp_secret: str | None = None  # the second factor, enrolled for admins and operators


def add_user(
    app: FastAPI, role: str, agency: str | None = None, username: str | None = None, enrol: bool = True
) -> Login:
    """A new account; admins and operators get a second factor unless ``enrol`` is False."""
    username = username or f"{role}_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(16)
    runtime = runtime_of(app)
    with runtime.sessions() as db:
        users.create_user(db, runtime.reference, username, role, password, runtime.clock(), agency=agency)
    secret = enrol_totp(app, username) if enrol and role in twofactor.ROLES_WITH_2FA else None
    return Login(username, password, role, secret)


def csrf(client: TestClient, path: str = "/lapor") -> str:
    token: str = client.get(path).context["csrf_token"]
    return token


def login(client: TestClient, who: Login) -> None:
    """Log in with the password and, for admins and operators, a TOTP code of the app's clock."""
    r = client.post(
        "/staf/masuk",
        data={"csrf_token": csrf(client, "/staf/masuk"), "username": who.username, "password": who.password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    if who.totp_secret is None:
        return
    assert r.headers["location"].startswith("/staf/2fa"), r.headers["location"]
    app: FastAPI = client.app  # type: ignore[assignment]
    r = client.post(
        "/staf/2fa",
        data={
            "csrf_token": csrf(client, "/staf/2fa"),
            "code": totp_code(app, who.username, who.totp_secret),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def staff_client(app: FastAPI, role: str, agency: str | None = None) -> TestClient:
    """A second, logged-in client (own cookie jar) for the same app; the caller closes it."""
    c = TestClient(app)
    login(c, add_user(app, role, agency))
    return c


def jpeg(width: int = 64, height: int = 48, gps: bool = False, fmt: str = "JPEG") -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 30))
    buf = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif[0x8825] = {1: "N", 2: (3.0, 36.0, 0.0), 3: "E", 4: (98.0, 29.0, 0.0)}  # GPSInfo
        img.save(buf, fmt, exif=exif)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def report_form(**overrides: str) -> dict[str, str]:
    data = {
        "category": "perencanaan_pembangunan",
        "title": "Drainase tersumbat",
        "description": "Air meluap ke jalan setiap hujan di depan pasar.",
        "kelurahan": "tangsi",
        "address": "Jl. Sudirman",
        "privacy": "public",
        "contact_name": "Siti Aminah",
        "contact_phone": "081234567890",
        "contact_email": "siti@example.id",
    }
    data.update(overrides)
    return data


def report_id(app: FastAPI, code: str) -> int:
    """The database id of the report with this tracking code (staff URLs use ids)."""
    with runtime_of(app).sessions() as db:
        return reports.get_by_code(db, code).id


def submit(client: TestClient, photos: list[bytes] | None = None, **overrides: str) -> str:
    """Submit through the public form; returns the tracking code."""
    data = {"csrf_token": csrf(client), **report_form(**overrides)}
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos or [])]
    r = client.post("/lapor", data=data, files=files or None, follow_redirects=False)
    assert r.status_code == 303, r.text
    location: str = r.headers["location"]
    return location.split("/")[2].split("?")[0]


@contextlib.contextmanager
def portal_with_smtp(
    settings: Settings, clock: FakeClock, port: int, **smtp: Any
) -> Iterator[tuple[FastAPI, TestClient]]:
    """The app as ``bcc portal serve`` builds it with BCC_PORTAL_SMTP_* set (the server on ``port``)."""
    app = create_app(settings, clock=clock.now, smtp=SmtpSettings("127.0.0.1", port, **smtp))
    with TestClient(app) as client:
        yield app, client


@contextlib.contextmanager
def portal_with_sms(
    settings: Settings, clock: FakeClock, fake: FakeTwilio, **sms: Any
) -> Iterator[tuple[FastAPI, TestClient]]:
    """The app as ``bcc portal serve`` builds it with BCC_PORTAL_SMS_* set (and no SMTP): its notifier
    sends SMS."""
    app = create_app(settings, clock=clock.now, sms=fake.settings(**sms))
    with TestClient(app) as client:
        assert notifier_of(app).sms is not None, "the notifier has no SMS provider"
        yield app, client


def notifier_of(app: FastAPI) -> Notifier:
    notifier = runtime_of(app).connections.notifier
    assert notifier is not None, "the portal runs without its notifier (no SMTP or SMS settings?)"
    return notifier


def outbox(app: FastAPI) -> list[Notification]:
    """Every row of the notification outbox, oldest first."""
    with runtime_of(app).sessions() as db:
        return list(db.scalars(select(Notification).order_by(Notification.id)))


class LiveServer:
    """The app under a real uvicorn on a free loopback port, in a thread (for raw-socket tests)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        eventually_sync(lambda: self.server.started, timeout=10, step=0.01, what="uvicorn started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
