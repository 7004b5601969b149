"""Build every dashboard as deterministic JSON (sorted keys, fixed uids), ready for provisioning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from devices.loader import LoadedSite
from grafana import citizen_reports, command_room, gateway_health
from grafana.common import DS
from grafana.files import DASHBOARD_DIR

__all__ = ["DASHBOARD_DIR", "dashboards", "render", "write_all"]


def _datasource_objects(node: Any) -> None:
    """Every ``datasource`` key becomes the provisioned ``{"type", "uid"}`` object
    (grafanalib 0.7.1 emits a plain name)."""
    if isinstance(node, dict):
        if node.get("datasource", "") is None:
            del node["datasource"]  # custom variables: no datasource at all, not null
        for key, value in node.items():
            if key == "datasource":
                node[key] = dict(DS)
            else:
                _datasource_objects(value)
    elif isinstance(node, list):
        for item in node:
            _datasource_objects(item)


def dashboards(loaded: LoadedSite) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (a plain dict)."""
    out: dict[str, dict[str, Any]] = {}
    for name, dash in (
        ("command_room.json", command_room.build(loaded)),
        ("citizen_reports.json", citizen_reports.build()),
        ("gateway_health.json", gateway_health.build()),
    ):
        data: dict[str, Any] = json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder))
        _datasource_objects(data)
        data.pop("id", None)  # provisioned dashboards are identified by uid
        out[name] = data
    return out


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_all(loaded: LoadedSite, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in dashboards(loaded).items():
        path = out / name
        path.write_text(render(data), encoding="utf-8")
        written.append(path)
    return written
