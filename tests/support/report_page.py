"""The citizen's report form (/lapor) in Chromium (tests/support/cdp.py drives the browser)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cdp import Page


async def fill_report(page: Page, title: str, description: str, photos: list[Path]) -> None:
    """Fill the open /lapor form: a category, a kelurahan, the text, a location, anonymous, ``photos``."""
    await page.fill("#f-category", "perencanaan_pembangunan")
    await page.fill("#f-kelurahan", "tangsi")
    await page.fill("#f-title", title)
    await page.fill("#f-description", description)
    await page.fill("#f-lat", "3.6001")
    await page.fill("#f-lon", "98.4854")
    await page.eval("document.querySelector('input[name=privacy][value=anonymous]').checked = true")
    await page.set_files("#f-photos", photos)
