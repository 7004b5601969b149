"""The SMS choice in headless Chromium, through the web app's draft path (``POST /lapor/draf``): axe
finds nothing serious on the form with the choice; a number an SMS cannot reach is refused on the phone
with the server's own message before anything is kept or sent; a mobile number goes through, and the
reporter gets one SMS (a local fake of Twilio's API, tests/support/sms.py). Screenshot in
``artifacts/portal/``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from portal.db import make_engine, upgrade
from portal.i18n import translate
from portal.main import create_app
from portal.models import Report
from portal.runtime import runtime_of
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import Page, chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, make_settings
from tests.support.sms import fake_twilio
from tests.support.wait import eventually

ARTIFACTS = ROOT / "artifacts" / "portal"
# the web app's drafts database and its "drafts waiting" flag (portal/static/app.js), without creating it
DRAFTS = "indexedDB.databases().then(d => [d.map(x => x.name), localStorage.getItem('bcc-drafts')])"


async def submit(page: Page) -> None:
    await page.eval("document.querySelector('form.report > button[type=submit]:last-of-type').click()")


async def test_the_sms_choice_is_checked_on_the_phone_and_the_sms_arrives(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    axe = await asyncio.to_thread(axe_source)
    with fake_twilio() as twilio:
        app = create_app(settings, sms=twilio.settings())
        with LiveServer(app) as server:
            async with chromium_page(tmp_path / "profile") as page:
                await page.goto(f"{server.url}/lapor")
                assert await serious_violations(page, axe) == []  # the form with its SMS choice
                await page.fill("#f-category", "perencanaan_pembangunan")
                await page.fill("#f-kelurahan", "tangsi")
                await page.fill("#f-title", "Lampu jalan mati")
                await page.fill("#f-description", "Tiga lampu jalan mati sejak minggu lalu.")
                await page.fill("#f-contact_phone", "061 4567890")  # a landline: no SMS reaches it
                await page.eval(
                    "document.querySelector('input[name=notify_channel][value=sms]').checked = true"
                )
                await submit(page)

                async def refused() -> str | None:
                    text: str = await page.eval("document.querySelector('#drafts').innerText")
                    return text if translate("err_phone_sms", "id") in text else None

                await eventually(refused, timeout=15, what="refused on the phone")
                await page.screenshot(ARTIFACTS / "sms-01-refused.png")
                assert await page.eval(DRAFTS) == [[], None]  # nothing kept to be refused later
                with runtime_of(app).sessions() as db:
                    assert db.scalar(select(func.count()).select_from(Report)) == 0
                assert twilio.requests == 0

                await page.fill("#f-contact_phone", "0812 3456 7890")
                await submit(page)

                async def status_page() -> str | None:
                    url = await page.url()
                    return url if "/laporan/" in url else None

                url = await eventually(status_page, timeout=15, what="sent as a draft, status page open")
                code = url.split("/laporan/")[1].split("?")[0]
                [message] = await asyncio.to_thread(twilio.wait, 1)
                assert message.to == "+6281234567890" and code in message.body
                with runtime_of(app).sessions() as db:
                    stored = db.scalar(select(Report).where(Report.code == code))
                    assert stored is not None and stored.draft_hash is not None  # the draft path
                    assert (stored.notify_channel, stored.contact_phone) == ("sms", "+6281234567890")
