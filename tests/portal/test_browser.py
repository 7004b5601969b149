"""End to end in headless Chromium on a phone-sized screen, with axe-core on the public pages.

A citizen submits a report with a photo, gets a code and sees the status; an admin logs in, verifies,
dispatches and closes it. Screenshots go to ``artifacts/portal/`` (git-ignored), kept after the run.
axe-core comes from npm (``var/node``, installed on first use) and may find no serious or critical issue.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from portal.main import create_app
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, add_user, jpeg, make_settings
from tests.support.report_page import fill_report
from tests.support.staff_login import totp_code

ARTIFACTS = ROOT / "artifacts" / "portal"


async def test_citizen_and_admin_in_chromium(tmp_path: Path) -> None:
    axe = await asyncio.to_thread(axe_source)
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    from portal.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = create_app(settings)
    admin = add_user(app, "admin")
    photo = tmp_path / "foto.jpg"
    photo.write_bytes(jpeg(800, 600, gps=True))
    with LiveServer(app) as server:
        async with chromium_page(tmp_path / "profile") as page:
            base = server.url
            await page.goto(f"{base}/lapor")
            await fill_report(page, "Drainase tersumbat", "Air meluap ke jalan setiap hujan.", [photo])
            await page.screenshot(ARTIFACTS / "01-form.png")
            await page.click_and_wait("form.report > button[type=submit]:last-of-type")
            assert "/laporan/BJ-" in await page.url()
            code = await page.eval("document.querySelector('.code').textContent.trim()")
            assert code.startswith("BJ-")
            assert await page.eval("document.querySelectorAll('img[src^=\"/foto/\"]').length") == 1
            await page.screenshot(ARTIFACTS / "02-submitted.png")
            problems = {}
            for path in ("/", "/lapor", f"/laporan/{code}", "/daftar", "/lacak", "/lapor?lang=en"):
                await page.goto(base + path)
                problems[path] = await serious_violations(page, axe)
            assert problems == {p: [] for p in problems}
            await page.goto(f"{base}/staf")
            await page.fill("#username", admin.username)
            await page.fill("#password", admin.password)
            await page.click_and_wait("form button[type=submit]")
            assert admin.totp_secret is not None  # admins log in with a second factor
            await page.fill("#code", totp_code(app, admin.username, admin.totp_secret))
            await page.click_and_wait("form button[type=submit]")
            assert (await page.url()).endswith("/staf")
            await page.screenshot(ARTIFACTS / "03-queue.png")
            await page.click_and_wait("a[href^='/staf/laporan/']")
            for step, selector in (
                ("verify", "form[action$='/verifikasi'] button"),
                ("dispatch", "form[action$='/disposisi'] button"),
            ):
                await page.click_and_wait(selector)
                await page.screenshot(ARTIFACTS / f"04-{step}.png")
            await page.fill("#resolution", "resolved_direct")
            await page.click_and_wait("form[action$='/tutup'] button")
            await page.screenshot(ARTIFACTS / "05-closed.png")
            await page.goto(f"{base}/laporan/{code}?lang=id")
            assert "Diselesaikan langsung" in await page.eval("document.body.innerText")
            # the closed report's page carries the verdict, privacy and remember forms: axe them too
            assert await serious_violations(page, axe) == []
            await page.screenshot(ARTIFACTS / "06-citizen-sees-closed.png")
            await page.eval("document.querySelector('input[name=verdict][value=solved]').checked = true")
            await page.click_and_wait("form[action$='/nilai'] button")
            assert "Sudah selesai" in await page.eval("document.body.innerText")
            await page.click_and_wait("form[action$='/ingat'] button")
            await page.goto(f"{base}/lacak")
            assert code in await page.eval("document.querySelector('ul.mine').innerText")
            assert await serious_violations(page, axe) == []
            await page.goto(f"{base}/daftar")
            assert await page.eval("document.querySelectorAll('svg.map circle').length") == 1
            assert await serious_violations(page, axe) == []
            await page.screenshot(ARTIFACTS / "07-public-list-with-map.png")
