"""Shared pieces of the generated dashboards: the datasource reference, targets and units.

Grafana >= 8.3 references datasources as ``{"type", "uid"}`` objects; grafanalib 0.7.1 would emit a
name string, so every panel and target gets this object, with the uid that
``provisioning/datasources/influxdb.yaml`` declares.
"""

from __future__ import annotations

from typing import Any

from grafanalib.core import GridPos, Template
from grafanalib.influxdb import InfluxDBTarget

DATASOURCE_UID = "bcc-influxdb"
DS: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39  # Grafana 10/11: no migration on load
WIDTH = 24

# Profile units -> Grafana unit ids.
UNITS = {
    "°C": "celsius",
    "%": "humidity",
    "ppm": "ppm",
    "lx": "lux",
    "W": "watt",
    "kW": "kwatt",
    "V": "volt",
    "A": "amp",
    "Hz": "hertz",
    "kWh": "kwatth",
    "1": "none",
}

SITE_FILTER = '"site" =~ /^$site$/'
DEVICE_FILTER = '"device" =~ /^$device$/'


def target(query: str, ref: int, alias: str = "", fmt: str = "time_series") -> InfluxDBTarget:
    return InfluxDBTarget(query=query, refId=chr(ord("A") + ref), alias=alias, format=fmt, datasource=DS)


def targets(*queries: str) -> list[InfluxDBTarget]:
    return [target(q, i) for i, q in enumerate(queries)]


def query_variable(name: str, label: str, query: str, multi: bool = True) -> Template:
    return Template(
        name=name,
        label=label,
        query=query,
        dataSource=DS,
        type="query",
        includeAll=True,
        multi=multi,
        refresh=2,
        default="$__all",
        sort=1,
    )


class Grid:
    """Lays panels out left to right in the 24-column grid, wrapping to new rows."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0

    def __call__(self, w: int, h: int = 8) -> GridPos:
        if self.x + w > WIDTH:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


def unit_json(unit: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": UNITS.get(unit or "", unit or "none")}
    return {"fieldConfig": {"defaults": {**defaults, **(extra or {})}}}


ON_OFF = [
    {
        "type": "value",
        "options": {"0": {"text": "OFF", "color": "dark-gray"}, "1": {"text": "ON", "color": "green"}},
    }
]
ONLINE_OFFLINE = [
    {
        "type": "value",
        "options": {"0": {"text": "offline", "color": "red"}, "1": {"text": "online", "color": "green"}},
    }
]

# The ISA-18.2 states of bcc alarms (bcc_contract/alarms.py STATES), as the console colours them.
ALARM_STATES = [
    {
        "type": "value",
        "options": {
            "normal": {"text": "normal", "color": "green"},
            "active_unacked": {"text": "active, not acknowledged", "color": "red"},
            "active_acked": {"text": "active, acknowledged", "color": "orange"},
            "cleared_unacked": {"text": "cleared, not acknowledged", "color": "yellow"},
            "shelved": {"text": "shelved", "color": "blue"},
        },
    }
]
