""" "Citizen reports" dashboard: the report events and backlog the portal publishes (docs/influxdb.md)."""

from __future__ import annotations

from grafanalib.core import BarGauge, Dashboard, Stat, Table, Template, Templating, Time, TimeSeries

from bcc_contract.reports import category_keys
from grafana.common import DS, SCHEMA_VERSION, Grid, target, targets, unit_json

EVENTS = '"reports"."report_event"'
CAT = '"category" =~ /^$category$/'
CREATED = "\"event\" = 'created'"
CLOSED = "\"event\" = 'closed'"


def build(categories: tuple[str, ...] | None = None) -> Dashboard:
    """The dashboard for ``categories`` (default: the contract's categories.yaml, so a new one is drawn)."""
    grid = Grid()
    bars = {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal", "group": "A"}}
    panels: list[object] = [
        TimeSeries(
            title="Submissions per day by category",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT sum("count") FROM {EVENTS} WHERE {CREATED} AND {CAT} AND $timeFilter '
                    'GROUP BY time(1d), "category" fill(0)',
                    0,
                    alias="$tag_category",
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            stacking=bars["stacking"],
            gridPos=grid(16, 8),
        ),
        BarGauge(
            title="Open backlog by status (now)",
            dataSource=DS,
            targets=[
                target(
                    'SELECT last("open") FROM "reports"."report_backlog" WHERE $timeFilter GROUP BY "status"',
                    0,
                    alias="$tag_status",
                )
            ],
            orientation="horizontal",
            gridPos=grid(8, 8),
        ),
        TimeSeries(
            title="Open backlog by status",
            dataSource=DS,
            targets=[
                target(
                    'SELECT last("open") FROM "reports"."report_backlog" WHERE $timeFilter '
                    'GROUP BY time($__interval), "status" fill(previous)',
                    0,
                    alias="$tag_status",
                )
            ],
            gridPos=grid(12, 8),
        ),
        Stat(
            title="Deadlines missed now",
            description="Open reports past 3 working days unverified, or 5 without an agency response",
            dataSource=DS,
            targets=targets(
                'SELECT last("verification") AS "verification > 3 working days", '
                'last("response") AS "agency response > 5 working days" '
                'FROM "reports"."report_overdue" WHERE $timeFilter'
            ),
            gridPos=grid(6, 8),
        ),
        TimeSeries(
            title="Report events per day by kind",
            description="Every lifecycle event the portal publishes (created ... reopened), one series each",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT sum("count") FROM {EVENTS} WHERE {CAT} AND $timeFilter '
                    'GROUP BY time(1d), "event" fill(0)',
                    0,
                    alias="$tag_event",
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            gridPos=grid(6, 8),
        ),
        TimeSeries(
            title="Late steps per day",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT sum("count") FROM {EVENTS} WHERE "late" = \'true\' AND {CAT} AND $timeFilter '
                    'GROUP BY time(1d), "event" fill(0)',
                    0,
                    alias="$tag_event",
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            gridPos=grid(6, 8),
        ),
        TimeSeries(
            title="Closures per month (30-day buckets) by resolution",
            description="InfluxQL has no calendar months: buckets are 30 days, aligned to the epoch",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT sum("count") FROM {EVENTS} WHERE "event" = \'closed\' AND '
                    f'"resolution" =~ /^(resolved_direct|needs_budget|rejected)$/ AND {CAT} AND $timeFilter '
                    'GROUP BY time(30d), "resolution" fill(0)',
                    0,
                    alias="$tag_resolution",
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            stacking=bars["stacking"],
            gridPos=grid(12, 8),
        ),
        Stat(
            title="Median time to close",
            dataSource=DS,
            targets=targets(
                f'SELECT median("duration_s") FROM {EVENTS} WHERE {CLOSED} AND {CAT} AND $timeFilter'
            ),
            extraJson=unit_json("s"),
            gridPos=grid(6, 8),
        ),
        TimeSeries(
            title="Median time to close per week",
            dataSource=DS,
            targets=targets(
                f'SELECT median("duration_s") FROM {EVENTS} WHERE {CLOSED} AND {CAT} AND $timeFilter '
                "GROUP BY time(7d) fill(none)"
            ),
            extraJson=unit_json("s"),
            gridPos=grid(6, 8),
        ),
        Table(
            title="Latest closures",
            description="A confidential report's closure has no tracking code (its events carry none)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT "report", "category", "resolution", "duration_s", "late" FROM {EVENTS} '
                    f"WHERE \"event\" = 'closed' AND {CAT} AND $timeFilter ORDER BY time DESC LIMIT 50",
                    0,
                    fmt="table",
                )
            ],
            gridPos=grid(24, 8),
        ),
    ]
    chosen = sorted(category_keys() if categories is None else categories)
    return Dashboard(
        title="Citizen reports",
        uid="bcc-citizen-reports",
        description="Report events and backlog published by the portal (docs/influxdb.md)",
        tags=["bcc"],
        timezone="browser",
        refresh="1m",
        schemaVersion=SCHEMA_VERSION,
        time=Time("now-90d", "now"),
        templating=Templating(
            list=[
                Template(
                    name="category",
                    label="Kategori",
                    type="custom",
                    query=",".join(chosen),
                    includeAll=True,
                    multi=True,
                    default="$__all",
                )
            ]
        ),
        panels=panels,
    ).auto_panel_ids()
