"""The Command room dashboard's "as the console draws it" panels, from the site's console plan
(devices/console.py): the numbered circuits, each wall's displays, and the latest sensor and meter
readings, each by device and point, so any site's devices appear without hand edits."""

from __future__ import annotations

from grafanalib.core import Stat, StateTimeline

from devices.loader import LoadedSite
from grafana.common import DS, ON_OFF, SITE_FILTER, Grid, target, unit_json


def _where(device: str) -> str:
    return f"{SITE_FILTER} AND \"device\" = '{device}' AND $timeFilter"


def build(loaded: LoadedSite, grid: Grid) -> list[object]:
    console = loaded.console()
    model = {d.id: d.profile for d in loaded.site.devices}
    name = {d.id: d.name for d in loaded.site.devices}
    panels: list[object] = []
    if console.circuits:
        number = 0
        queries, legend = [], []
        for entry in console.circuits:
            fields = []
            for point in entry.points:
                number += 1
                fields.append(f'last("{point}") AS "Circuit {number}"')
                legend.append(f"Circuit {number} = {entry.device}.{point}")
            queries.append(
                f'SELECT {", ".join(fields)} FROM "raw"."{model[entry.device]}" WHERE {_where(entry.device)} '
                "GROUP BY time($__interval) fill(previous)"
            )
        panels.append(
            StateTimeline(
                title="Circuits",
                description="The console's circuits, numbered as on the console: " + "; ".join(legend),
                dataSource=DS,
                targets=[target(q, i) for i, q in enumerate(queries)],
                mappings=ON_OFF,
                gridPos=grid(24, max(8, number // 2)),
            )
        )
    for wall in console.walls:
        shown = ", ".join(f'last("{d.feedback}") AS "Display {i}"' for i, d in enumerate(wall.displays, 1))
        panels.append(
            StateTimeline(
                title=f"{name[wall.device]}: displays",
                description=f"Power feedback of every display of wall controller {wall.device}",
                dataSource=DS,
                targets=[
                    target(
                        f'SELECT {shown} FROM "raw"."{model[wall.device]}" WHERE {_where(wall.device)} '
                        "GROUP BY time($__interval) fill(previous)",
                        0,
                    )
                ],
                mappings=ON_OFF,
                gridPos=grid(24 if len(wall.displays) > 4 else 12, 8),
            )
        )
    # Latest readings: one stat panel per point (one unit per panel), one value per sensor or meter.
    for entries in (console.sensors, console.meters):
        by_point: dict[tuple[str, str], list[str]] = {}
        for entry in entries:
            for point in entry.points:
                by_point.setdefault((model[entry.device], point), []).append(entry.device)
        for (profile, point), devices in by_point.items():
            p = loaded.profiles[profile].point(point)
            panels.append(
                Stat(
                    title=f"{p.label.en} now",
                    description=f"Latest {point} of " + ", ".join(devices),
                    dataSource=DS,
                    targets=[
                        target(
                            f'SELECT last("{point}") FROM "raw"."{profile}" WHERE {_where(d)}',
                            i,
                            alias=name[d],
                        )
                        for i, d in enumerate(devices)
                    ],
                    reduceCalc="lastNotNull",
                    graphMode="none",
                    extraJson=unit_json(p.unit),
                    gridPos=grid(6, 4),
                )
            )
    return panels
