"""The evaluation page in Chromium at a laptop's (1280 px) and a desktop's (1920 px) width, and printed
(A4 landscape, every page): no chart text overlaps a bar or another text or leaves its chart, and the
table is not clipped (element bounding boxes); screenshots and the PDF go to artifacts/evaluation/."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from fastapi.testclient import TestClient

from portal.db import make_engine, upgrade
from portal.main import create_app
from tests.portal.web.evaluation_data import fill_month
from tests.support.cdp import Page, chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import FakeClock, LiveServer, make_settings

ARTIFACTS = ROOT / "artifacts" / "evaluation"
A4_LANDSCAPE_CONTENT_PX = 1031  # 297 mm - 2 x 12 mm margins, at 96 px per inch

LAYOUT_PROBLEMS = """(() => {
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
                            a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const problems = [];
  const charts = [...document.querySelectorAll('svg.chart')];
  if (charts.length !== 3) problems.push(`${charts.length} charts, not 3`);
  const width = document.documentElement.clientWidth;
  for (const svg of charts) {
    const box = svg.getBoundingClientRect();
    if (box.left < -0.5 || box.right > width + 0.5) problems.push(`${svg.id} leaves the page`);
    const texts = [...svg.querySelectorAll('text')];
    const bars = [...svg.querySelectorAll('rect')].map(r => r.getBoundingClientRect());
    texts.forEach((t, i) => {
      const a = t.getBoundingClientRect();
      if (bars.some(b => overlap(a, b))) problems.push(`${svg.id}: "${t.textContent}" on a bar`);
      for (const u of texts.slice(i + 1))
        if (overlap(a, u.getBoundingClientRect()))
          problems.push(`${svg.id}: "${t.textContent}" on "${u.textContent}"`);
      const inside = a.left >= box.left - 0.5 && a.right <= box.right + 0.5 &&
                     a.top >= box.top - 0.5 && a.bottom <= box.bottom + 0.5;
      if (!inside) problems.push(`${svg.id}: "${t.textContent}" leaves the chart`);
    });
  }
  const table = document.querySelector('#evaluation-table');
  if (table.getBoundingClientRect().right > width + 0.5) problems.push('the table is clipped on the right');
  if (table.scrollWidth > table.clientWidth + 1) problems.push('the table scrolls sideways');
  if (document.documentElement.scrollWidth > width) problems.push('the page scrolls sideways');
  return problems;
})()"""


async def _at(page: Page, width: int, height: int) -> None:
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
    )


async def test_the_evaluation_reads_at_1280_and_1920_px_and_prints_on_a4(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    clock = FakeClock()
    app = create_app(settings, clock=clock.now)
    with TestClient(app) as client:
        admin = fill_month(app, client, clock)
        session = admin.cookies["bcc_session"]
        admin.close()
    with LiveServer(app) as server:
        async with chromium_page(tmp_path / "profile") as page:
            await page.send("Network.enable")
            await page.send("Network.setCookie", name="bcc_session", value=session, url=server.url)
            for width, height in ((1280, 800), (1920, 1080)):
                await _at(page, width, height)
                await page.goto(f"{server.url}/staf/evaluasi?month=2026-11")
                assert (
                    await page.eval("document.querySelector('h1').textContent") == "Evaluasi bulanan 2026-11"
                )
                await page.screenshot(ARTIFACTS / f"evaluation-{width}.png")
                assert await page.eval(LAYOUT_PROBLEMS) == [], width
            # Printed: the print stylesheet at the width of an A4 landscape page's content.
            await _at(page, A4_LANDSCAPE_CONTENT_PX, 740)
            await page.send("Emulation.setEmulatedMedia", media="print")
            assert (
                await page.eval("getComputedStyle(document.querySelector('nav.staffnav')).display") == "none"
            )
            assert await page.eval(LAYOUT_PROBLEMS) == [], "print"
            await page.screenshot(ARTIFACTS / "evaluation-print.png")
            pdf = await page.send("Page.printToPDF", preferCSSPageSize=True, printBackground=True)
            data = base64.b64decode(pdf["data"])
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "evaluation-a4.pdf").write_bytes(data)
            boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
            assert boxes and all(abs(float(w) - 841.89) < 1 and abs(float(h) - 595.28) < 1 for w, h in boxes)
            assert len(boxes) <= 2, f"{len(boxes)} A4 pages for two rows of data"
