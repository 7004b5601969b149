"""The agency pages and the yearly budget view in headless Chromium with axe-core, as an admin, on the
demo's data (reports in every state, proposals in several stages), at 1280 px: no serious or critical
finding in either language and no sideways scrolling, the list links to the funded proposal's agency,
and the yearly view shows its funded amount. Screenshots go to ``artifacts/portal/`` (git-ignored)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from portal.demo import seed
from portal.main import create_app
from portal.models import Proposal
from portal.runtime import runtime_of
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, make_settings, staff_client

ARTIFACTS = ROOT / "artifacts" / "portal"

AGENCY_LINKS = "[...document.querySelectorAll('main a[href^=\"/staf/dinas/\"]')].map(a => a.pathname)"


async def test_agency_and_yearly_pages_in_chromium_pass_axe_in_both_languages(tmp_path: Path) -> None:
    axe = await asyncio.to_thread(axe_source)
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    await asyncio.to_thread(seed, settings, datetime.now(UTC))
    app = create_app(settings)
    with runtime_of(app).sessions() as db:
        funded = db.scalar(select(Proposal).where(Proposal.stage == "apbd"))
        assert funded is not None
        year, agency, amount = funded.budget_year, funded.agency, funded.funded_amount
        assert amount
    admin = staff_client(app, "admin")
    session = admin.cookies["bcc_session"]
    admin.close()
    with LiveServer(app) as server:
        async with chromium_page(tmp_path / "profile") as page:
            desk = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
            await page.send("Emulation.setDeviceMetricsOverride", **desk)  # staff pages: a desk's screen
            await page.send("Network.enable")
            await page.send("Network.setCookie", name="bcc_session", value=session, url=server.url)
            await page.goto(f"{server.url}/staf/dinas?lang=id")
            links = await page.eval(AGENCY_LINKS)
            assert f"/staf/dinas/{agency}" in links, links
            problems = {}
            for lang in ("id", "en"):
                for name, path in (
                    ("agencies", "/staf/dinas"),
                    ("agency", f"/staf/dinas/{agency}"),
                    ("yearly", f"/staf/evaluasi/tahunan?year={year}"),
                ):
                    await page.goto(f"{server.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                    problems[(path, lang)] = await serious_violations(page, axe)
                    if await page.eval("document.documentElement.scrollWidth > innerWidth"):
                        problems[(path, lang)].append("the page scrolls sideways at 1280 px")
                    await page.screenshot(ARTIFACTS / f"staff-{name}-{lang}.png")
            assert problems == {key: [] for key in problems}
            await page.goto(f"{server.url}/staf/evaluasi/tahunan?year={year}&lang=id")
            text = await page.eval("document.body.innerText")
            assert f"{amount:,}".replace(",", ".") in text, text  # the funded rupiah, Indonesian grouping
