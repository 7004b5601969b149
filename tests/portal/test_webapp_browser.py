"""The web app in headless Chromium (docs/portal.md, "Web app"): installable (a valid manifest, the
service worker active), an offline draft kept on the phone and sent exactly once when the connection
returns (Chromium's offline emulation), its photo resized on the phone, and "use my location" with a
mocked position. Screenshots go to ``artifacts/portal/`` (git-ignored)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from portal.db import make_engine, upgrade
from portal.main import create_app
from portal.models import Report
from portal.runtime import runtime_of
from tests.support.cdp import Page, chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, jpeg, make_settings
from tests.support.wait import eventually

ARTIFACTS = ROOT / "artifacts" / "portal"


async def js(page: Page, expression: str) -> Any:
    return await page.eval(expression)


async def until(page: Page, expression: str, accept: Callable[[Any], bool], what: str) -> Any:
    """The value of ``expression`` in the page once ``accept`` takes it (polled, 15 s at most)."""

    async def check() -> Any:
        value = await page.eval(expression)
        return value if accept(value) else None

    return await eventually(check, timeout=15, what=what)


async def network(page: Page, offline: bool, workers: dict[str, str]) -> None:
    """Chromium's offline emulation for the page and for its service worker (``workers``: session id
    -> target type, from ``Target.attachedToTarget``), whose own fetches it would otherwise let through."""
    for session in [None, *(sid for sid, kind in workers.items() if kind == "service_worker")]:
        await page.send_to(session, "Network.enable")
        await page.send_to(
            session,
            "Network.emulateNetworkConditions",
            offline=offline,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )


async def fill_report(page: Page, title: str) -> None:
    await page.fill("#f-category", "perencanaan_pembangunan")
    await page.fill("#f-kelurahan", "tangsi")
    await page.fill("#f-title", title)
    await page.fill("#f-description", "Air meluap ke jalan setiap hujan.")


async def test_installable_offline_draft_and_location(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = create_app(settings)
    photo = tmp_path / "foto.jpg"
    photo.write_bytes(jpeg(3000, 2000))  # resized on the phone to the server's longest side, 2048
    with LiveServer(app) as server:
        base = server.url
        async with chromium_page(tmp_path / "profile") as page:
            await page.send("Network.enable")
            workers: dict[str, str] = {}
            page.handlers["Target.attachedToTarget"] = lambda p: workers.__setitem__(
                p["sessionId"], p["targetInfo"]["type"]
            )
            await page.send(
                "Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=False, flatten=True
            )
            await page.goto(f"{base}/lapor")
            # installable: the manifest as Chromium parsed it, and the service worker running
            manifest = await page.send("Page.getAppManifest")
            assert manifest["errors"] == [] and json.loads(manifest["data"])["name"] == "Lapor Binjai"
            state = "navigator.serviceWorker.ready.then(r => r.active && r.active.state)"
            await until(page, state, lambda s: s == "activated", what="service worker active")
            installability = await page.send("Page.getInstallabilityErrors")
            assert installability["installabilityErrors"] == []

            # "use my location": a position in Satria fills the point and proposes the kelurahan
            await page.send("Browser.grantPermissions", permissions=["geolocation"], origin=base)
            await page.send(
                "Emulation.setGeolocationOverride", latitude=3.6001, longitude=98.4854, accuracy=10
            )
            await js(page, "document.querySelector('#locate').click()")
            kelurahan = "document.querySelector('#f-kelurahan').value"
            await until(page, kelurahan, lambda k: k == "satria", what="kelurahan proposed")
            point = "[document.querySelector('#f-lat').value, document.querySelector('#f-lon').value]"
            assert await js(page, point) == ["3.600100", "98.485400"]
            assert "Satria (Binjai Kota)" in await js(
                page, "document.querySelector('#locate-msg').textContent"
            )
            await page.screenshot(ARTIFACTS / "pwa-01-location.png")
            # a position outside Binjai is refused with a message, and the point is not kept
            await page.send(
                "Emulation.setGeolocationOverride", latitude=3.5952, longitude=98.6744, accuracy=10
            )
            await js(page, "document.querySelector('#locate').click()")
            message = "document.querySelector('#locate-msg').textContent"
            await until(page, message, lambda m: "luar Kota Binjai" in m, what="refused")
            assert await js(page, "document.querySelector('#f-lat').value") == ""

            # offline: the page still opens (the service worker's copy), the report is kept on the phone
            await until(page, "1", lambda _: "service_worker" in workers.values(), what="worker attached")
            await network(page, offline=True, workers=workers)
            # a page that was never fetched in English: offline, the cached form (Indonesian) answers
            await page.goto(f"{base}/lapor?lang=en")
            assert await js(page, "[navigator.onLine, document.documentElement.lang]") == [False, "id"]
            await fill_report(page, "Laporan tanpa sinyal")
            await page.set_files("#f-photos", [photo])
            await js(page, "document.querySelector('form.report > button[type=submit]:last-of-type').click()")
            notice = "document.querySelector('#drafts').innerText"
            await until(page, notice, lambda t: "disimpan di ponsel" in t, what="draft kept")
            drafts = (
                "new Promise(ok => { const r = indexedDB.open('bcc-drafts', 1); r.onsuccess = () => "
                "{ const q = r.result.transaction('drafts').objectStore('drafts').count(); "
                "q.onsuccess = () => { r.result.close(); ok(q.result); }; }; })"
            )
            assert await js(page, drafts) == 1
            await page.screenshot(ARTIFACTS / "pwa-02-offline-draft.png")
            with runtime_of(app).sessions() as db:
                assert db.scalars(select(Report)).all() == []

            # back online: sent once, the code and the reporter's key shown
            await network(page, offline=False, workers=workers)
            code_shown = "(document.querySelector('#drafts .code') || {}).textContent"
            code = await until(page, code_shown, lambda c: bool(c), what="draft sent")
            assert await js(page, drafts) == 0
            assert "disimpan di ponsel" not in await js(page, notice)  # "kept" gave way to "sent"
            link = await js(page, "document.querySelector('#drafts a.keylink').getAttribute('href')")
            assert link.startswith(f"/laporan/{code}/kunci/")
            await page.screenshot(ARTIFACTS / "pwa-03-sent.png")
            # a second "online" finds nothing left to send
            await js(page, "window.dispatchEvent(new Event('online')); true")
            with runtime_of(app).sessions() as db:
                stored = db.scalars(select(Report)).all()
                assert [r.code for r in stored] == [code] and stored[0].title == "Laporan tanpa sinyal"
                assert stored[0].draft_hash is not None
                assert [(p.width, p.height) for p in stored[0].photos] == [(2048, 1365)]
            # the key link opens the report as its reporter
            await page.goto(base + link)
            assert "/laporan/" + code in await page.url()
            assert await js(page, "!!document.querySelector('form[action$=\"/info\"]')")
