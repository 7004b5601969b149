"""The real stack for the console and the wall: Mosquitto (project config), the demo room's simulators,
the gateway in-process, and the portal under a real uvicorn with its MQTT client (role ``portal``).

The HTTP client is asynchronous, so the gateway and the simulators (on the test's event loop) keep
running while the test waits for the portal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from mosquitto import MosquittoProcess
from portal.config import DEFAULT_SITE_FILE, PortalMqttSettings
from portal.main import create_app
from portal.services.deadlines import WIB
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, running_gateway
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, Login, add_user, make_settings
from tests.support.staff_login import totp_code
from tests.support.wait import eventually

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login_async(client: httpx.AsyncClient, who: Login, app: FastAPI) -> None:
    """Password, then (admins and operators) a TOTP code of ``app``'s clock."""
    page = await client.get("/staf/masuk")
    r = await client.post(
        "/staf/masuk",
        data={"csrf_token": csrf_of(page.text), "username": who.username, "password": who.password},
    )
    assert r.status_code == 303, r.text
    if who.totp_secret is None:
        return
    page = await client.get(r.headers["location"])
    r = await client.post(
        "/staf/2fa",
        data={"csrf_token": csrf_of(page.text), "code": totp_code(app, who.username, who.totp_secret)},
    )
    assert r.status_code == 303, r.text


@dataclass
class Console:
    """A logged-in browser-less console client of a running portal."""

    app: FastAPI
    http: httpx.AsyncClient
    csrf: str = ""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def open(self) -> str:
        page = await self.http.get("/konsol")
        assert page.status_code == 200, page.status_code
        self.csrf = csrf_of(page.text)
        return page.text

    async def send(self, action: str, target: str, value: str) -> list[dict[str, str]]:
        r = await self.http.post(
            "/konsol/perintah",
            data={"csrf_token": self.csrf, "action": action, "target": target, "value": value},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 202, (r.status_code, r.text)
        commands: list[dict[str, str]] = r.json()["commands"]
        return commands

    async def status(self, txn: str) -> dict[str, Any]:
        r = await self.http.get(f"/konsol/perintah/{txn}")
        assert r.status_code == 200
        result: dict[str, Any] = r.json()
        return result

    async def result(self, txn: str, timeout: float = 10.0) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            s = await self.status(txn)
            return s if s["status"] != "pending" else None

        found: dict[str, Any] = await eventually(done, timeout, what=f"command {txn} answered")
        return found

    async def state(self) -> dict[str, Any]:
        snap: dict[str, Any] = (await self.http.get("/konsol/state.json")).json()
        return snap

    async def _pump(self) -> None:
        async with self.http.stream("GET", "/konsol/events") as r:
            assert r.status_code == 200
            kind = ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[6:])))

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Collect the server-sent events of /konsol/events into ``self.events`` while inside."""
        task = asyncio.create_task(self._pump())
        try:
            await eventually(
                lambda: any(k == "snapshot" for k, _ in self.events),
                5,
                what="the console's first snapshot event",
            )
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class Stack:
    app: FastAPI
    url: str
    sim: SiteSimulator | None

    @contextlib.asynccontextmanager
    async def console(self, role: str = "operator") -> AsyncIterator[Console]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            who = add_user(self.app, role)
            await login_async(http, who, self.app)
            c = Console(self.app, http)
            yield c


SHIPPED_SCENES = ROOT / "portal" / "data" / "scenes.yaml"


def scenes_away_from_now(tmp_path: Path) -> Path:
    """The shipped scenes with every schedule moved 12 hours away from now. These apps run on the real
    clock, and the shipped 22:00 WIB "night" schedule fired in any test that ran between 22:00 and
    22:05 WIB, switching lights and the wall under the test (seen in CI). Schedules themselves are
    tested in tests/portal/console/test_scenes.py with a schedule set to the current minute."""
    book = yaml.safe_load(SHIPPED_SCENES.read_text(encoding="utf-8"))
    away = (datetime.now(UTC).astimezone(WIB) + timedelta(hours=12)).strftime("%H:%M")
    for schedule in (book.get("schedules") or {}).values():
        schedule["at"] = away
    path = tmp_path / "scenes.yaml"
    path.write_text(yaml.safe_dump(book), encoding="utf-8")
    return path


def portal_app(
    tmp_path: Path,
    sqlite_template: Path,
    broker: MosquittoProcess | None,
    site_file: Path = DEFAULT_SITE_FILE,
    **mqtt: Any,
) -> FastAPI:
    db = tmp_path / "portal.db"
    shutil.copy(sqlite_template, db)
    settings: dict[str, Any] = {"scenes_file": scenes_away_from_now(tmp_path), "site_file": site_file}
    if broker is not None:
        settings["mqtt"] = PortalMqttSettings(
            host=broker.host, port=broker.port, password=broker.password("portal"), **mqtt
        )
    return create_app(make_settings(f"sqlite:///{db}", tmp_path, **settings))


@contextlib.asynccontextmanager
async def portal_stack(
    tmp_path: Path,
    sqlite_template: Path,
    broker: MosquittoProcess,
    sim: SiteSimulator | None,
    mqtt: dict[str, Any] | None = None,
    site_file: Path = DEFAULT_SITE_FILE,
    **gateway: Any,
) -> AsyncIterator[Stack]:
    """Gateway (when ``sim`` is given) and portal (drawing ``site_file``), both connected to ``broker``."""
    app = portal_app(tmp_path, sqlite_template, broker, site_file, **(mqtt or {}))
    async with contextlib.AsyncExitStack() as stack:
        if sim is not None:
            await stack.enter_async_context(
                running_gateway(gateway_config(sim.site_for_clients(), broker, **gateway))
            )
        server = stack.enter_context(LiveServer(app))
        yield Stack(app, server.url, sim)
