"""Portal fixtures: an app per test on each database backend with a fake clock (helpers are in
tests/support/portal_app.py), an SMTP server and a fake SMS provider for its notifier, and the real stack
for the console and the wall (tests/support/stack.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mosquitto import MosquittoProcess
from portal.config import Settings
from portal.main import create_app
from simulators.site import SiteSimulator
from tests.support.portal_app import FakeClock, make_settings
from tests.support.sms import FakeTwilio, fake_twilio
from tests.support.smtp import Inbox, smtp_server
from tests.support.stack import Stack, portal_stack


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(portal_db_url: str, tmp_path: Path) -> Settings:
    return make_settings(portal_db_url, tmp_path)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock.now)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port: what it received, and its port."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A local fake of Twilio's Messages API (tests/support/sms.py)."""
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
async def stack(
    tmp_path: Path, sqlite_template: Path, mosquitto: MosquittoProcess, room_sim: SiteSimulator
) -> AsyncIterator[Stack]:
    """Mosquitto, the demo room's simulators, the gateway in-process and the portal under uvicorn."""
    async with portal_stack(tmp_path, sqlite_template, mosquitto, room_sim, offline_after_failures=2) as s:
        yield s
