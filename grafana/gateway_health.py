""" "Gateway health" dashboard: gateway heartbeat, availability, command results and the recorder."""

from __future__ import annotations

from grafanalib.core import Dashboard, Stat, StateTimeline, Templating, TimeSeries

from grafana.common import (
    DS,
    ONLINE_OFFLINE,
    SCHEMA_VERSION,
    SITE_FILTER,
    Grid,
    query_variable,
    target,
    unit_json,
)

RECORDER = '"raw"."recorder"'
HEALTH = '"raw"."gateway_health"'


def _health_series(title: str, select: str, unit: str | None = None, **kw: object) -> TimeSeries:
    """A time series of ``bcc/bridge/<gateway>/health`` fields (published every health_period_s)."""
    return TimeSeries(
        title=title,
        dataSource=DS,
        targets=[
            target(
                f"SELECT {select} FROM {HEALTH} WHERE {SITE_FILTER} AND $timeFilter "
                "GROUP BY time($__interval) fill(none)",
                0,
            )
        ],
        extraJson=unit_json(unit) if unit else {},
        gridPos=kw.pop("gridPos"),
        **kw,
    )


def build() -> Dashboard:
    grid = Grid()
    panels: list[object] = [
        TimeSeries(
            title="Devices online (gateway heartbeat)",
            dataSource=DS,
            targets=[
                target(
                    'SELECT last("devices_online") AS "online", last("devices") AS "devices" '
                    f"FROM {HEALTH} WHERE {SITE_FILTER} AND $timeFilter "
                    "GROUP BY time($__interval) fill(previous)",
                    0,
                )
            ],
            gridPos=grid(12, 8),
        ),
        StateTimeline(
            title="Gateway and device availability (failures)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT last("online") FROM "raw"."availability" WHERE {SITE_FILTER} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(previous)',
                    0,
                    alias="$tag_device",
                )
            ],
            mappings=ONLINE_OFFLINE,
            gridPos=grid(12, 8),
        ),
        _health_series(
            "Modbus poll latency (mean per health period)",
            'mean("poll_latency_ms_mean") AS "mean latency"',
            "ms",
            gridPos=grid(8, 8),
        ),
        _health_series(
            "Modbus polls per second", 'mean("polls_per_s") AS "polls/s"', "reqps", gridPos=grid(8, 8)
        ),
        _health_series(
            "Modbus request errors (per second)",
            'non_negative_derivative(last("request_errors_total"), 1s) AS "errors/s"',
            "short",
            description="Rate of the gateway's request_errors_total (timeouts, exceptions, refusals)",
            gridPos=grid(8, 8),
        ),
        _health_series(
            "Missed poll deadlines (per minute)",
            'non_negative_derivative(last("missed_deadlines_total"), 1m) AS "missed/min"',
            "short",
            description="Polls that started after their period had already elapsed (a bus is overloaded)",
            gridPos=grid(8, 8),
        ),
        _health_series(
            "Request queue depth (deepest bus)",
            'max("max_queue_depth") AS "queue depth"',
            "short",
            gridPos=grid(8, 8),
        ),
        TimeSeries(
            title="Command results by status (gateway counters)",
            description="Commands finished per interval, from the gateway's commands_<status> totals",
            dataSource=DS,
            targets=[
                target(
                    f"SELECT non_negative_difference(last(/^commands_/)) FROM {HEALTH} "
                    f"WHERE {SITE_FILTER} AND $timeFilter GROUP BY time($__interval) fill(none)",
                    0,
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            extraJson={
                "transformations": [
                    {
                        "id": "renameByRegex",
                        "options": {"regex": ".*commands_(.*)$", "renamePattern": "$1"},
                    }
                ]
            },
            gridPos=grid(8, 8),
        ),
        TimeSeries(
            title="Command results (responses)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT sum("count") FROM "raw"."command_response" WHERE {SITE_FILTER} AND $timeFilter '
                    'GROUP BY time($__interval), "status" fill(0)',
                    0,
                    alias="$tag_status",
                )
            ],
            drawStyle="bars",
            fillOpacity=80,
            gridPos=grid(12, 8),
        ),
        TimeSeries(
            title="Recorder write rate (field values/s)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT non_negative_derivative(last("written"), 1s) FROM {RECORDER} '
                    f'WHERE {SITE_FILTER} AND $timeFilter GROUP BY time($__interval), "instance" fill(none)',
                    0,
                    alias="$tag_instance",
                )
            ],
            gridPos=grid(12, 8),
        ),
        TimeSeries(
            title="Recorder spool depth (field values waiting)",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT last("spool_depth") FROM {RECORDER} WHERE {SITE_FILTER} AND $timeFilter '
                    'GROUP BY time($__interval), "instance" fill(previous)',
                    0,
                    alias="$tag_instance",
                )
            ],
            gridPos=grid(12, 8),
        ),
        TimeSeries(
            title="Recorder write latency",
            dataSource=DS,
            targets=[
                target(
                    f'SELECT mean("write_latency_ms") FROM {RECORDER} WHERE {SITE_FILTER} AND $timeFilter '
                    'GROUP BY time($__interval), "instance" fill(none)',
                    0,
                    alias="$tag_instance",
                )
            ],
            extraJson=unit_json("ms"),
            gridPos=grid(12, 8),
        ),
        Stat(
            title="Recorder losses",
            description="Dropped (spool full, oldest first) and dead-lettered (refused by InfluxDB) values",
            dataSource=DS,
            targets=[
                target(
                    'SELECT last("dropped") AS "dropped", last("dead_lettered") AS "dead-lettered" '
                    f"FROM {RECORDER} WHERE {SITE_FILTER} AND $timeFilter",
                    0,
                )
            ],
            gridPos=grid(12, 8),
        ),
    ]
    return Dashboard(
        title="Gateway health",
        uid="bcc-gateway-health",
        description=(
            "Gateway heartbeat, Modbus polling, availability, command results and the recorder's statistics"
        ),
        tags=["bcc"],
        timezone="browser",
        refresh="10s",
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(
            list=[
                query_variable("site", "Site", 'SHOW TAG VALUES FROM "raw"."availability" WITH KEY = "site"')
            ]
        ),
        panels=panels,
    ).auto_panel_ids()
