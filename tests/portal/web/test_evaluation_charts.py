"""The monthly evaluation draws what the data says: every resolution and what is still open in the
per-row bars (each segment's value and width), the 12-month trend, the on-time rates per agency, and a
totals row with a name; the CSV carries the same counts."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.services.evaluation import SEGMENTS
from portal.web.charts import BAR_MAX
from tests.portal.web.evaluation_data import OUTCOMES, fill_month
from tests.support.portal_app import FakeClock


class _Svg(HTMLParser):
    """Rects (segment, x, y, width, value) and texts of one chart, by its id."""

    def __init__(self, chart_id: str) -> None:
        super().__init__()
        self.chart_id, self.inside, self.in_text = chart_id, False, False
        self.rects: list[tuple[str, float, float, float, float]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("id") == self.chart_id:
            self.inside = True
        elif self.inside and tag == "rect":
            segment = (a["class"] or "").split("seg-")[1]
            values = (float(a[k] or 0) for k in ("x", "y", "width", "data-value"))
            self.rects.append((segment, *values))  # type: ignore[arg-type]
        self.in_text = self.inside and tag == "text"

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.in_text and data.strip():
            self.texts.append(data.strip())


def chart(html: str, chart_id: str) -> _Svg:
    parser = _Svg(chart_id)
    parser.feed(html)
    return parser


def test_the_charts_draw_every_outcome_the_trend_and_the_rates(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    admin = fill_month(app, client, clock)
    try:
        page = admin.get("/staf/evaluasi?month=2026-11")
        html = page.text
        rows = {(r.category, r.agency): r for r in page.context["rows"]}
        planning = rows[("perencanaan_pembangunan", "bappeda")]
        assert [getattr(planning, o) for o in OUTCOMES] == [1, 1, 1, 1] and planning.still_open == 0

        by_row = chart(html, "chart-rows")
        # Rows are drawn in the table's order: health (1 open) then planning (one of each resolution).
        assert [(s, v) for s, _x, _y, _w, v in by_row.rects] == [
            ("still_open", 1),
            *[(o, 1) for o in OUTCOMES],
        ]
        assert {s for s, *_ in by_row.rects} == set(SEGMENTS), "every resolution and the open ones"
        widths = [w for *_s, w, _v in by_row.rects]
        peak = max(r.received for r in rows.values())
        assert all(abs(w - BAR_MAX / peak) < 0.01 for w in widths)  # one report = BAR_MAX / peak wide
        planning_rects = by_row.rects[1:]
        assert all(planning_rects[i][1] + planning_rects[i][3] == planning_rects[i + 1][1] for i in range(3))
        assert by_row.texts == ["Kesehatan · Dinkes", "1", "Perencanaan pembangunan · Bappeda", "4"]

        trend = chart(html, "chart-trend")
        assert trend.texts[-2:] == ["5", "Nov 26"] and trend.texts[:2] == ["0", "Des 25"]
        totals = trend.texts[0::2]
        assert totals == ["0"] * 9 + ["1", "1", "5"]  # Sep, Oct: one each; Nov: five
        assert sum(v for *_r, v in trend.rects) == 7

        rates = chart(html, "chart-rates")
        assert rates.texts == [
            "Bappeda",
            "Verifikasi tepat waktu: 100 %",
            "Dijawab tepat waktu: 100 %",
            "Dinkes",
            "Verifikasi tepat waktu: –",
            "Dijawab tepat waktu: –",
        ]
        assert re.search(r"<tfoot><tr><th scope=\"row\" colspan=\"2\">Jumlah</th><td>5</td>", html)
        english = admin.get("/staf/evaluasi?month=2026-11&lang=en").text
        assert chart(english, "chart-trend").texts[-1] == "Nov 26" and ">Total</th>" in english
        csv_text = admin.get("/staf/evaluasi.csv?month=2026-11").text
        assert "responded,responded_on_time" in csv_text.splitlines()[0]
    finally:
        admin.close()
