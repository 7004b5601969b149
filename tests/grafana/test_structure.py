"""Generated dashboards: deterministic, committed, and structurally sound for a modern Grafana."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from devices.loader import DEMO_SITE, load_site
from grafana.build import DASHBOARD_DIR, dashboards, render, write_all
from tests.support.paths import ROOT

PROVISIONING = ROOT / "grafana" / "provisioning"
ALLOWED = {"timeseries", "stat", "state-timeline", "barchart", "bargauge", "table", "piechart", "row"}
MACROS = {"timeFilter", "__interval", "__interval_ms", "__all"}
BUILT = dashboards(load_site(DEMO_SITE))


def test_build_is_deterministic_and_committed(tmp_path: Path) -> None:
    write_all(load_site(DEMO_SITE), tmp_path)
    for name in BUILT:
        assert (tmp_path / name).read_text() == (DASHBOARD_DIR / name).read_text(), (
            f"{name} drifted from the generator: run `bcc grafana build`"
        )
    assert render(dashboards(load_site(DEMO_SITE))["command_room.json"]) == render(BUILT["command_room.json"])


def _provisioned_uids() -> set[str]:
    uids = set()
    for path in (PROVISIONING / "datasources").glob("*.yaml"):
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            uids.add(ds["uid"])
    return uids


def _datasources(node: Any) -> list[Any]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                found.append(value)
            else:
                found += _datasources(value)
    elif isinstance(node, list):
        for item in node:
            found += _datasources(item)
    return found


@pytest.mark.parametrize("name", sorted(BUILT))
def test_dashboard_structure(name: str) -> None:
    dash = BUILT[name]
    orjson.loads(orjson.dumps(dash))
    assert dash["title"] and re.fullmatch(r"[a-z0-9-]{1,40}", dash["uid"]) and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    declared = {v["name"] for v in dash["templating"]["list"]}
    for v in dash["templating"]["list"]:
        if v["type"] == "custom":
            assert v["query"], "custom variables carry their values inline"
    uids = _provisioned_uids()
    for ds in _datasources(dash):
        assert isinstance(ds, dict) and ds["type"] == "influxdb" and ds["uid"] in uids, ds
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert panel["type"] in ALLOWED, panel["type"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            q = t["query"]
            assert q.strip() and t["rawQuery"] is True
            assert "$timeFilter" in q, (panel["title"], q)
            used = set(re.findall(r"\$(\w+)", q)) - MACROS
            used = {u for u in used if not u.startswith("tag_")}
            assert used <= declared, (panel["title"], used - declared)
    titles = [d["title"] for d in BUILT.values()]
    assert len(set(titles)) == len(titles) and len({d["uid"] for d in BUILT.values()}) == len(BUILT)


def test_new_profile_appears_without_hand_edits() -> None:
    loaded = load_site(DEMO_SITE)
    kept = {k: v for k, v in loaded.profiles.items() if k != "envsensor"}
    smaller = type(loaded)(loaded.site.model_copy(update={"devices": tuple(
        d for d in loaded.site.devices if d.profile != "envsensor")}), kept)  # fmt: skip
    titles = {p["title"] for p in dashboards(smaller)["command_room.json"]["panels"]}
    full = {p["title"] for p in BUILT["command_room.json"]["panels"]}
    assert {"CO2", "Humidity", "Illuminance"} <= full - titles
