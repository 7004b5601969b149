"""The public development-proposal pages in headless Chromium on a phone-sized screen, with axe-core:
no serious or critical finding on /usulan, a proposal's page and a linked report's status page.
Screenshots go to ``artifacts/portal/`` (git-ignored)."""

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
from tests.support.portal_app import LiveServer, make_settings

ARTIFACTS = ROOT / "artifacts" / "portal"


async def test_proposal_pages_in_chromium_pass_axe(tmp_path: Path) -> None:
    axe = await asyncio.to_thread(axe_source)
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    await asyncio.to_thread(seed, settings, datetime.now(UTC))  # the demo's proposals in several stages
    app = create_app(settings)
    with runtime_of(app).sessions() as db:
        funded = db.scalar(select(Proposal).where(Proposal.stage == "apbd"))
        assert funded is not None
        pid = funded.id
        code = funded.links[0].report.code
    with LiveServer(app) as server:
        async with chromium_page(tmp_path / "profile") as page:
            problems = {}
            for name, path in (
                ("list", "/usulan"),
                ("list-en", "/usulan?lang=en&stage=apbd"),
                ("proposal", f"/usulan/{pid}?lang=id"),
                ("proposal-en", f"/usulan/{pid}?lang=en"),
                ("report", f"/laporan/{code}?lang=id"),
            ):
                await page.goto(server.url + path)
                problems[path] = await serious_violations(page, axe)
                await page.screenshot(ARTIFACTS / f"usulan-{name}.png")
            assert problems == {p: [] for p in problems}
            await page.goto(f"{server.url}/usulan/{pid}?lang=id")
            text = await page.eval("document.body.innerText")
            assert "Didanai APBD" in text and "Rp 800.000.000" in text and code in text
            await page.goto(f"{server.url}/laporan/{code}?lang=id")
            assert "Didanai APBD" in await page.eval("document.querySelector('.proposal-stage').innerText")
