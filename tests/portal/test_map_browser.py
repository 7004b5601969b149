"""#18 item 2: the kelurahan is chosen by tapping the map on /daftar. Each kelurahan drawn from the
shipped boundaries is a link to the form with it chosen (``/lapor?kelurahan=...``), so it works without
JavaScript; in headless Chromium a touch on a point inside Satria opens the form with Satria selected,
and the map, the shapes and their names are as the boundaries say. Screenshot in ``artifacts/portal/``."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from portal.db import make_engine, upgrade
from portal.main import create_app
from portal.reference import load_reference
from portal.services import location
from portal.web.public import svg_xy
from tests.support.cdp import Page, chromium_page
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, make_settings
from tests.support.wait import eventually

ARTIFACTS = ROOT / "artifacts" / "portal"
# a point in kelurahan Satria (the same one the form's "use my location" test uses)
SATRIA = (3.6001, 98.4854)


def test_every_kelurahan_on_the_map_links_to_the_form_with_it_chosen(client: TestClient) -> None:
    page = client.get("/daftar").text
    shape = r'<a href="/lapor\?kelurahan=([a-z_]+)" aria-label="([^"]+)"><path class="kel" d="M'
    links = re.findall(shape, page)
    ref = load_reference()
    assert sorted(k for k, _ in links) == sorted(a.key for a in location.areas())  # every shape, once
    assert all(label == f"Buat laporan di kelurahan {ref.kelurahan_name(k)}" for k, label in links)
    assert 'aria-label="Make a report in kelurahan' in client.get("/daftar?lang=en").text
    # the link without JavaScript: the form opens with that kelurahan selected
    form = client.get("/lapor?kelurahan=satria").text
    assert re.search(r'<option value="satria" selected>', form)
    assert len(re.findall(r"<option value=\"[a-z_]+\" selected>", form)) == 1


async def tap(page: Page, x: float, y: float) -> None:
    """A finger's touch at viewport point (x, y)."""
    point = [{"x": x, "y": y}]
    await page.send("Input.dispatchTouchEvent", type="touchStart", touchPoints=point)
    await page.send("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])


async def test_tapping_a_kelurahan_on_the_map_fills_the_forms_kelurahan(tmp_path: Path) -> None:
    assert location.kelurahan_at(*SATRIA) == "satria"
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    with LiveServer(create_app(settings)) as server:
        async with chromium_page(tmp_path / "profile") as page:
            await page.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=1)
            await page.goto(f"{server.url}/daftar")
            sx, sy = svg_xy(*SATRIA)
            # where that map point is on the screen, after scrolling the map into view
            where = (
                "(() => { const s = document.querySelector('#peta'); s.scrollIntoView(); "
                f"const p = new DOMPoint({sx}, {sy}).matrixTransform(s.getScreenCTM()); "
                "return [p.x, p.y]; })()"
            )
            x, y = await page.eval(where)
            shape = f"document.elementFromPoint({x}, {y}).closest('a').getAttribute('href')"
            assert await page.eval(shape) == "/lapor?kelurahan=satria"
            await page.screenshot(ARTIFACTS / "map-01-daftar.png")
            page.loaded.clear()
            await tap(page, x, y)

            async def opened() -> str | None:
                url = await page.url()
                return url if url.endswith("/lapor?kelurahan=satria") else None

            await eventually(opened, timeout=15, what="the form opened from the map")
            chosen = "document.querySelector('#f-kelurahan').value"
            assert await eventually(lambda: _value(page, chosen), timeout=15) == "satria"
            await page.screenshot(ARTIFACTS / "map-02-form.png")


async def _value(page: Page, expression: str) -> str | None:
    value = await page.eval(expression)
    return value if isinstance(value, str) and value else None
