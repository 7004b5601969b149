"""The Command room dashboard of a second site (devices/sites/two_floors.yaml) draws every circuit, wall,
sensor and meter of that site, read from the site file, with no code change."""

from __future__ import annotations

from typing import Any

from devices.loader import load_site
from grafana.build import dashboards
from tests.support.site_expect import TWO_FLOORS, expected


def _queries(dash: dict[str, Any]) -> list[str]:
    return [t["query"] for p in dash["panels"] for t in p["targets"]]


def _of(queries: list[str], device: str) -> list[str]:
    return [q for q in queries if f"\"device\" = '{device}'" in q]


def test_two_floors_dashboard_has_every_device_and_circuit() -> None:
    e = expected(TWO_FLOORS)
    dash = dashboards(load_site(TWO_FLOORS))["command_room.json"]
    queries = _queries(dash)
    circuits = next(p for p in dash["panels"] if p["title"] == "Circuits")
    for n, (device, point) in enumerate(e.circuits, 1):
        assert f"Circuit {n} = {device}.{point}" in circuits["description"]
        assert any(f'last("{point}") AS "Circuit {n}"' in q for q in _of(queries, device)), (n, device, point)
    assert f"Circuit {len(e.circuits) + 1} " not in circuits["description"]
    for device, displays in e.walls:
        [wall] = [p for p in dash["panels"] if p["title"] == f"{e.devices[device]}: displays"]
        [q] = [t["query"] for t in wall["targets"]]
        assert f"\"device\" = '{device}'" in q
        assert all(f'last("{feedback}") AS "Display {i}"' in q for i, (_, feedback) in enumerate(displays, 1))
    for device, points in e.sensors + e.meters:
        for point in points:
            assert any(f'last("{point}")' in q for q in _of(queries, device)), (device, point)
        # A sensor's point left out of the console section is not drawn for it.
        assert not any('last("co2")' in q for q in _of(queries, device)) or "co2" in points
