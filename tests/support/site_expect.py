"""What a site file says the console must draw, read straight from the YAML (site and profiles), without
the code under test: explicit ``console:`` lists as written, left-out lists from the profiles' hints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devices.loader import PROFILE_DIR, SITE_DIR

TWO_FLOORS = SITE_DIR / "two_floors.yaml"
ROLES = {"circuits": "circuits", "walls": "wall", "sensors": "sensor", "meters": "meter"}


@dataclass(frozen=True)
class Expected:
    devices: dict[str, str]  # id -> name
    circuits: list[tuple[str, str]]  # (device, point), in console order (circuit n = index + 1)
    walls: list[tuple[str, list[tuple[str, str]]]]  # (device, [(power, feedback)])
    sensors: list[tuple[str, list[str]]]
    meters: list[tuple[str, list[str]]]


def expected(site_file: Path) -> Expected:
    site: dict[str, Any] = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    profiles = {
        p["model"]: p
        for p in (yaml.safe_load(f.read_text(encoding="utf-8")) for f in PROFILE_DIR.glob("*.yaml"))
    }
    model = {d["id"]: d["profile"] for d in site["devices"]}
    console = site.get("console") or {}
    lists: dict[str, list[dict[str, Any]]] = {}
    for key, role in ROLES.items():
        if console.get(key) is not None:
            lists[key] = console[key]
        else:
            lists[key] = [
                {"device": d["id"]}
                for d in site["devices"]
                if (profiles[d["profile"]].get("console") or {}).get("role") == role
            ]

    def hint(device: str) -> dict[str, Any]:
        found: dict[str, Any] = profiles[model[device]]["console"]
        return found

    def points(entry: dict[str, Any]) -> list[str]:
        return list(entry.get("points") or hint(entry["device"])["points"])

    return Expected(
        devices={d["id"]: d["name"] for d in site["devices"]},
        circuits=[(e["device"], p) for e in lists["circuits"] for p in points(e)],
        walls=[
            (
                e["device"],
                [(d["power"], d["feedback"]) for d in e.get("displays") or hint(e["device"])["displays"]],
            )
            for e in lists["walls"]
        ],
        sensors=[(e["device"], points(e)) for e in lists["sensors"]],
        meters=[(e["device"], points(e)) for e in lists["meters"]],
    )
