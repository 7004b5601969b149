"""The evaluation's charts as SVG geometry computed here, so the template only draws and the tests can
check what is drawn (tests/portal/web/test_evaluation_charts.py). No inline styles (the portal's CSP is
``style-src 'self'``): sizes are SVG attributes, colours CSS classes (``seg-<segment>``, portal.css).

Layout rules that keep text off the bars at any screen width (the SVG scales as a whole): a bar's label
sits on its own line above it, a bar ends at ``BAR_MAX`` of the width and its number is written after
it, and month labels sit below their columns, each inside its own slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from portal.i18n import translate
from portal.reference import Lang
from portal.services.evaluation import SEGMENTS, AgencyRate, MonthCount, Row

WIDTH = 800.0
BAR_MAX = 700.0  # the widest bar: the rest of the line holds its number
FONT = 14.0
ROW_H = 46.0
BAR_H = 16.0
# the months' short names under the columns: messages month_short_1 .. month_short_12 (portal/locale)
MONTH_KEYS = tuple(f"month_short_{i}" for i in range(1, 13))


@dataclass
class Seg:
    segment: str  # SEGMENTS member, or "verify" / "respond"
    x: float
    y: float
    w: float
    h: float
    value: int | float


@dataclass
class Label:
    text: str
    x: float
    y: float
    anchor: str = "start"


@dataclass
class Chart:
    height: float
    segs: list[Seg] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    @property
    def view_box(self) -> str:
        return f"0 0 {WIDTH:g} {self.height:g}"


def _stack(chart: Chart, counts: Sequence[tuple[str, int]], x: float, y: float, scale: float) -> float:
    """Horizontal stacked segments from ``x``; returns where they end."""
    for segment, value in counts:
        if value:
            w = value * scale
            chart.segs.append(Seg(segment, round(x, 2), y, round(w, 2), BAR_H, value))
            x += w
    return x


def rows_chart(rows: list[Row], label: Callable[[Row], str]) -> Chart:
    """One stacked bar per category and agency: every resolution and what is still open."""
    peak = max([r.received for r in rows] or [1]) or 1
    chart = Chart(height=ROW_H * len(rows) + 4)
    for i, row in enumerate(rows):
        top = i * ROW_H
        chart.labels.append(Label(label(row), 0, top + FONT))
        end = _stack(chart, [(s, getattr(row, s)) for s in SEGMENTS], 0, top + FONT + 6, BAR_MAX / peak)
        chart.labels.append(Label(str(row.received), end + 8, top + FONT + 6 + BAR_H - 3))
    return chart


def trend_chart(months: list[MonthCount], lang: Lang) -> Chart:
    """Twelve columns (oldest left), each stacked by segment, its total above and its month below."""
    names = [translate(key, lang) for key in MONTH_KEYS]
    plot_h, top = 180.0, FONT + 8
    peak = max([m.received for m in months] or [1]) or 1
    slot = WIDTH / max(len(months), 1)
    chart = Chart(height=top + plot_h + 2 * FONT + 12)
    for i, m in enumerate(months):
        x, bottom = i * slot + slot * 0.2, top + plot_h
        for segment in SEGMENTS:
            value = getattr(m, segment)
            if value:
                h = value * plot_h / peak
                bottom -= h
                chart.segs.append(
                    Seg(segment, round(x, 2), round(bottom, 2), round(slot * 0.6, 2), round(h, 2), value)
                )
        middle = i * slot + slot / 2
        chart.labels.append(Label(str(m.received), middle, bottom - 4, "middle"))
        year, mon = m.month.split("-")
        chart.labels.append(
            Label(f"{names[int(mon) - 1]} {year[2:]}", middle, top + plot_h + FONT + 4, "middle")
        )
    return chart


def rates_chart(rates: list[AgencyRate], label: Callable[[str], str], verify: str, respond: str) -> Chart:
    """Per agency: the share of reports verified on time and answered on time (0-100 %)."""
    line = FONT + 6 + 2 * (BAR_H + 4) + 10
    chart = Chart(height=line * len(rates) + 4)
    scale = (BAR_MAX - 200) / 100
    for i, rate in enumerate(rates):
        top = i * line
        chart.labels.append(Label(label(rate.agency), 0, top + FONT))
        for k, (segment, pct, name) in enumerate(
            (("verify", rate.verify_pct, verify), ("respond", rate.respond_pct, respond))
        ):
            y = top + FONT + 6 + k * (BAR_H + 4)
            w = (pct or 0) * scale
            if w:
                chart.segs.append(Seg(segment, 0, y, round(w, 2), BAR_H, pct or 0))
            text = f"{name}: {'–' if pct is None else f'{pct:g} %'}"
            chart.labels.append(Label(text, w + 8, y + BAR_H - 3))
    return chart
