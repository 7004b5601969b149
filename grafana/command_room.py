""" "Command room" dashboard, generated from the site's device profiles: a new device or profile shows
up without hand edits. Booleans -> state timelines, enumerations -> state timelines of names,
numbers -> time series grouped by device class, ``total_increasing`` counters -> energy per day; then the
site's circuits, walls, sensors and meters as the operator console draws them (grafana/console_panels.py)."""

from __future__ import annotations

from collections import defaultdict

from grafanalib.core import Dashboard, StateTimeline, Table, Templating, TimeSeries

from devices.loader import LoadedSite
from devices.models import DeviceProfile, Point
from grafana import console_panels
from grafana.common import (
    ALARM_STATES,
    DEVICE_FILTER,
    DS,
    ON_OFF,
    ONLINE_OFFLINE,
    SCHEMA_VERSION,
    SITE_FILTER,
    Grid,
    query_variable,
    target,
    targets,
    unit_json,
)

WHERE = f"{SITE_FILTER} AND {DEVICE_FILTER} AND $timeFilter"


def _profiles(loaded: LoadedSite) -> list[DeviceProfile]:
    return sorted(loaded.profiles.values(), key=lambda p: p.model)


def _last_of(points: list[Point]) -> str:
    return ", ".join(f'last("{p.key}") AS "{p.key}"' for p in points)


def _series_title(points: list[Point]) -> str:
    first = points[0]
    if first.device_class:
        return first.device_class.replace("_", " ").capitalize().replace("Carbon dioxide", "CO2")
    return first.label.en


def _alarm_panels(grid: Grid) -> list[object]:
    """The alarm timeline: every transition `bcc alarms` published, recorded by the recorder
    (``alarm_event``, docs/influxdb.md). Alarms of the gateway and the evaluator have no device, so the
    device filter does not apply here."""
    events = '"raw"."alarm_event"'
    return [
        StateTimeline(
            title="Alarms",
            description="State of every alarm that left normal (ISA-18.2: docs/alarms.md)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT last("state") FROM {events} WHERE $timeFilter '
                    'GROUP BY time($__interval), "alarm" fill(previous)',
                    0,
                    alias="$tag_alarm",
                )
            ],
            mappings=ALARM_STATES,
            gridPos=grid(24, 8),
        ),
        Table(
            title="Alarm events",
            description="Newest first: who acknowledged or shelved, and the value that was judged",
            dataSource=DS,
            targets=[
                target(
                    'SELECT "alarm", "severity", "event", "state", "value", "value_text", "who" '
                    f"FROM {events} WHERE $timeFilter ORDER BY time DESC LIMIT 50",
                    0,
                    fmt="table",
                )
            ],
            gridPos=grid(24, 8),
        ),
    ]


def build(loaded: LoadedSite) -> Dashboard:
    grid = Grid()
    panels: list[object] = []
    panels.append(
        StateTimeline(
            title="Device availability",
            dataSource=DS,
            targets=targets(
                f'SELECT last("online") FROM "raw"."availability" WHERE {WHERE} '
                'GROUP BY time($__interval), "device" fill(previous)'
            ),
            mappings=ONLINE_OFFLINE,
            gridPos=grid(24, 6),
        )
    )
    panels += _alarm_panels(grid)
    for prof in _profiles(loaded):
        bools = [p for p in prof.points if p.is_bool]
        enums = [p for p in prof.points if p.enum is not None]
        if bools:
            panels.append(
                StateTimeline(
                    title=f"{prof.label.en}: on/off",
                    description=f"Every boolean point of profile {prof.model}, per device",
                    dataSource=DS,
                    targets=targets(
                        f'SELECT {_last_of(bools)} FROM "raw"."{prof.model}" WHERE {WHERE} '
                        'GROUP BY time($__interval), "device" fill(previous)'
                    ),
                    mappings=ON_OFF,
                    gridPos=grid(24 if len(bools) > 4 else 12, 8),
                )
            )
        if enums:
            panels.append(
                StateTimeline(
                    title=f"{prof.label.en}: " + ", ".join(p.label.en.lower() for p in enums[:3]),
                    description=f"Enumerated points of profile {prof.model} (the names the device reports)",
                    dataSource=DS,
                    targets=targets(
                        f'SELECT {_last_of(enums)} FROM "raw"."{prof.model}" WHERE {WHERE} '
                        'GROUP BY time($__interval), "device" fill(previous)'
                    ),
                    gridPos=grid(24 if len(enums) > 2 else 12, 8),
                )
            )
    # Numbers: one panel per device class (or per point without one), across every profile.
    groups: dict[str, list[tuple[DeviceProfile, Point]]] = defaultdict(list)
    counters: list[tuple[DeviceProfile, Point]] = []
    for prof in _profiles(loaded):
        for p in prof.points:
            if not p.is_numeric:
                continue
            if p.state_class == "total_increasing":
                counters.append((prof, p))
            elif p.device_class:
                groups[p.device_class].append((prof, p))
    for _cls, members in sorted(groups.items()):
        pts = [p for _, p in members]
        panels.append(
            TimeSeries(
                title=_series_title(pts),
                dataSource=DS,
                targets=[
                    target(
                        f'SELECT mean("{p.key}") FROM "raw"."{prof.model}" WHERE {WHERE} '
                        'GROUP BY time($__interval), "device" fill(none)',
                        i,
                        alias=f"$tag_device {p.key}",
                    )
                    for i, (prof, p) in enumerate(members)
                ],
                extraJson=unit_json(pts[0].unit),
                gridPos=grid(12, 8),
            )
        )
    for prof, p in counters:
        panels.append(
            TimeSeries(
                title=f"{p.label.en} per day",
                dataSource=DS,
                targets=[
                    target(
                        f'SELECT spread("{p.key}") FROM "raw"."{prof.model}" WHERE {WHERE} '
                        'GROUP BY time(1d), "device" fill(0)',
                        0,
                        alias=f"$tag_device {p.key}",
                    )
                ],
                drawStyle="bars",
                fillOpacity=80,
                extraJson=unit_json(p.unit),
                gridPos=grid(12, 8),
            )
        )
    panels += console_panels.build(loaded, grid)
    return Dashboard(
        title="Command room",
        uid="bcc-command-room",
        description=f"Generated by `bcc grafana build` from site {loaded.site.site} and its profiles",
        tags=["bcc"],
        timezone="browser",
        refresh="10s",
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(
            list=[
                query_variable("site", "Site", 'SHOW TAG VALUES FROM "raw"."availability" WITH KEY = "site"'),
                query_variable(
                    "device",
                    "Device",
                    'SHOW TAG VALUES FROM "raw"."availability" WITH KEY = "device" WHERE "site" =~ /^$site$/',
                ),
            ]
        ),
        panels=panels,
    ).auto_panel_ids()
