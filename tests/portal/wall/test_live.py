"""The wall live, in headless Chromium at the wall's full resolution (13440 x 1080) and over its event
stream: a layout change sent through the real gateway (Mosquitto, the demo room's simulators, the
gateway, the portal's MQTT client) re-flows the open page without a reload; when the feed stops the views
are marked stale, and the page reconnects by itself when the portal is back. Screenshots go to
``artifacts/wall/`` (git-ignored), kept after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from mosquitto import MosquittoProcess
from portal.runtime import runtime_of
from portal.services import reports
from portal.services.events import NullSink
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import Page, chromium_page
from tests.support.gateway import with_ts
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, add_user
from tests.support.stack import Stack, login_async, portal_app
from tests.support.wait import eventually

ARTIFACTS = ROOT / "artifacts" / "wall"
WIDTH, HEIGHT = 13440, 1080


def publish_command(broker: MosquittoProcess, device: str, payload: dict[str, Any]) -> None:
    """An operator's command on ``bcc/<device>/set`` (role ``operator``), as any MQTT client sends it:
    with ``ts``, the time it is sent."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wall-test", protocol=mqtt.MQTTv5)
    client.username_pw_set("operator", broker.password("operator"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(f"bcc/{device}/set", json.dumps(with_ts(payload)), qos=1)
        info.wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def seed(app: FastAPI) -> None:
    """A few reports of each privacy level, so the screenshots show real views."""
    policy = reports.PhotoPolicy(runtime_of(app).settings.media_dir, 1, 0)
    cats = list(runtime_of(app).reference.categories)
    kels = ["tangsi", "nangka", "damai", "pujidadi", "mencirim", "suka_ramai", "kartini"]
    with runtime_of(app).sessions() as db:
        for i in range(14):
            inp = reports.ReportInput(
                category=cats[i % len(cats)],
                title="Laporan uji",
                description="Isi",
                kelurahan=kels[i % len(kels)],
                privacy=("public", "anonymous", "confidential")[i % 3],
                contact_name="Nama Pelapor",
            )
            reports.create_report(
                db,
                runtime_of(app).reference,
                inp,
                [],
                policy,
                NullSink(),
                runtime_of(app).clock() - timedelta(hours=i * 9),
            )


async def wall_page(page: Page, url: str, app: FastAPI) -> None:
    """Log in as a ``viewer`` and open the wall at the full canvas."""
    viewer = add_user(app, "viewer")
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False
    )
    await page.goto(f"{url}/staf/masuk")
    await page.fill("#username", viewer.username)
    await page.fill("#password", viewer.password)
    await page.click_and_wait("form button[type=submit]")
    await page.goto(f"{url}/dinding")


async def regions(page: Page) -> list[list[str]]:
    found: list[list[str]] = await page.eval(
        "[...document.querySelectorAll('#wall > .region')].map(r => "
        "[...r.querySelectorAll('section.view')].map(s => s.dataset.view))"
    )
    return found


async def test_layout_change_through_the_gateway_reflows_the_wall(
    stack: Stack, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    await asyncio.to_thread(seed, stack.app)
    async with chromium_page(tmp_path / "profile") as page:
        await wall_page(page, stack.url, stack.app)
        assert "Nama Pelapor" not in await page.eval("document.documentElement.outerHTML")
        await eventually(lambda: page.eval("document.getElementById('wall').dataset.connection === 'live'"))
        await eventually(lambda: page.eval("document.querySelector('.view-room .avail.online') !== null"))
        assert await page.eval("document.getElementById('wall').dataset.layout") == "wide"
        assert await regions(page) == [["feed"], ["map"], ["counts"], ["deadlines"], ["clock", "room"]]
        widths = await page.eval(
            "[...document.querySelectorAll('#wall > .region')].map(r => r.getBoundingClientRect().width)"
        )
        assert sum(widths) > WIDTH * 0.98 and abs(widths[0] - 2 * widths[2]) < 20, widths  # 2:2:1:1:1
        await page.screenshot(ARTIFACTS / "01-wide-13440x1080.png")
        assert await serious_violations(page, await asyncio.to_thread(axe_source)) == []

        # The same page stays open (no reload) while the operator switches the wall to split_4.
        await page.eval("window.__sameDocument = true")
        started = time.monotonic()
        # Measured from the publish (paho's loop thread may take a second to stop after it: not counted).
        sending = asyncio.create_task(
            asyncio.to_thread(publish_command, mosquitto, "wall", {"layout": "split_4"})
        )
        await eventually(
            lambda: page.eval("document.getElementById('wall').dataset.layout === 'split_4'"), 5, 0.02
        )
        elapsed = time.monotonic() - started
        await sending
        assert elapsed < 1.0, f"re-flow took {elapsed:.2f} s"
        assert await page.eval("window.__sameDocument === true")
        assert await regions(page) == [["clock", "feed"], ["map"], ["counts", "deadlines"], ["room"]]
        assert stack.sim is not None and stack.sim.device("wall").get_point("layout") == "split_4"
        await page.screenshot(ARTIFACTS / "02-split_4-13440x1080.png")

        await asyncio.to_thread(publish_command, mosquitto, "wall", {"layout": "split_7"})
        await eventually(lambda: page.eval("document.getElementById('wall').dataset.layout === 'split_7'"), 5)
        assert len(await regions(page)) == 7
        await page.screenshot(ARTIFACTS / "03-split_7-13440x1080.png")


async def test_event_stream_follows_the_controller(stack: Stack, mosquitto: MosquittoProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        await login_async(http, add_user(stack.app, "viewer"), stack.app)
        seen: list[tuple[str, dict[str, Any]]] = []

        async def pump() -> None:
            async with http.stream("GET", "/dinding/events") as r:
                assert r.status_code == 200
                kind = ""
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        seen.append((kind, json.loads(line[6:])))

        task = asyncio.create_task(pump())
        try:
            await eventually(
                lambda: {d.get("view") for k, d in seen if k == "view"} >= {"feed", "room", "clock"}
            )
            assert [d["layout"] for k, d in seen if k == "layout"] == ["wide"]
            await asyncio.to_thread(publish_command, mosquitto, "wall", {"layout": "split_2"})
            await eventually(
                lambda: [d["layout"] for k, d in seen if k == "layout"] == ["wide", "split_2"], 5
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[LiveServer]:
    server = LiveServer(app)
    if port is not None:  # the same address again: a portal restart as the wall's browser sees it
        server.port = port
    # A stop ends the open event streams too (uvicorn would otherwise wait for them).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=server.port, log_level="warning", timeout_graceful_shutdown=1
    )
    server.server = uvicorn.Server(config)
    server.thread = threading.Thread(target=server.server.run, daemon=True)
    await asyncio.to_thread(server.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)


async def test_stale_marker_when_the_feed_stops_and_reconnect(tmp_path: Path, sqlite_template: Path) -> None:
    app = portal_app(tmp_path, sqlite_template, None)
    runtime_of(app).wall.config = runtime_of(app).wall.config.model_copy(
        update={"stale_after_s": 3.0, "refresh_s": 1.0}
    )
    async with chromium_page(tmp_path / "profile") as page:
        async with serving(app) as server:
            port = server.port
            await wall_page(page, server.url, app)
            await eventually(
                lambda: page.eval("document.getElementById('wall').dataset.connection === 'live'")
            )
            await asyncio.sleep(4)  # longer than stale_after_s: the feed keeps the report views fresh
            assert (
                await page.eval("document.querySelector('.view-feed').classList.contains('stale')") is False
            )
            assert await page.eval("document.querySelector('.view-feed .stalemark').textContent") == ""
            # No broker in this test: the room's data cannot be current, and the page says so.
            assert await page.eval("document.querySelector('.view-room').classList.contains('stale')")
        # The portal is gone: after stale_after_s every data view is marked, the clock keeps going.
        await eventually(
            lambda: page.eval(
                "['feed','map','counts','deadlines'].every(v => "
                "document.querySelector('.view-' + v).classList.contains('stale'))"
            ),
            10,
        )
        assert "data lama" in await page.eval("document.querySelector('.view-feed .stalemark').textContent")
        assert await page.eval("document.getElementById('wall').dataset.connection") == "down"
        await page.screenshot(ARTIFACTS / "04-stale-13440x1080.png")
        # The portal is back on the same address: the page reconnects by itself, the marks go away.
        async with serving(app, port):
            await eventually(
                lambda: page.eval(
                    "document.getElementById('wall').dataset.connection === 'live' && "
                    "!document.querySelector('.view-feed').classList.contains('stale')"
                ),
                15,
            )
