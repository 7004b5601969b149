"""Which kelurahan of Binjai a point lies in, from the boundaries shipped in portal/data/kelurahan.json.

The boundaries are the simplified polygons of cahyadsn/wilayah_boundaries (MIT; per Kepmendagri
No 300.2.2-2430 Tahun 2025; scripts/kelurahan_boundaries.py builds the file). A point inside a
polygon (even-odd rule over all of a kelurahan's rings) is in that kelurahan. Simplified neighbours
leave thin gaps and the city's edge is drawn coarsely, so a point outside every polygon but within
``TOLERANCE_M`` of one belongs to the nearest; anything farther is outside Binjai. The same lookup
validates every submitted point (portal.services.reports.parse_point) and answers the form's "use my
location" button (``GET /lapor/lokasi``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parents[1] / "data" / "kelurahan.json"
TOLERANCE_M = 150.0
_M_PER_DEG = 111_320.0

Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Area:
    key: str
    code: str  # the Kemendagri region code, e.g. 12.75.02.1005
    centroid: tuple[float, float]
    rings: tuple[Ring, ...]
    box: tuple[float, float, float, float]  # south, north, west, east


@cache
def areas() -> tuple[Area, ...]:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    out = []
    for key, item in doc["kelurahan"].items():
        rings = tuple(tuple((float(a), float(b)) for a, b in ring) for ring in item["rings"])
        lats = [p[0] for r in rings for p in r]
        lons = [p[1] for r in rings for p in r]
        la, lo = item["centroid"]
        out.append(Area(key, item["code"], (la, lo), rings, (min(lats), max(lats), min(lons), max(lons))))
    return tuple(out)


def _inside(lat: float, lon: float, area: Area) -> bool:
    south, north, west, east = area.box
    if not (south <= lat <= north and west <= lon <= east):
        return False
    inside = False
    for ring in area.rings:
        for (a_lat, a_lon), (b_lat, b_lon) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (a_lat > lat) != (b_lat > lat):
                cross = a_lon + (lat - a_lat) * (b_lon - a_lon) / (b_lat - a_lat)
                if lon < cross:
                    inside = not inside
    return inside


def _edge_distance_m(lat: float, lon: float, area: Area) -> float:
    """Metres from the point to the nearest edge of ``area`` (a local flat projection: the city is 10 km)."""
    kx = _M_PER_DEG * math.cos(math.radians(lat))
    best = math.inf
    for ring in area.rings:
        for (a_lat, a_lon), (b_lat, b_lon) in zip(ring, ring[1:] + ring[:1], strict=True):
            ax, ay = (a_lon - lon) * kx, (a_lat - lat) * _M_PER_DEG
            bx, by = (b_lon - lon) * kx, (b_lat - lat) * _M_PER_DEG
            dx, dy = bx - ax, by - ay
            length = dx * dx + dy * dy
            t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
            best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def kelurahan_at(lat: float, lon: float) -> str | None:
    """The key (portal/data/areas.yaml) of the kelurahan at (lat, lon); None outside Binjai."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    all_areas = areas()
    for area in all_areas:
        if _inside(lat, lon, area):
            return area.key
    distance, key = min((_edge_distance_m(lat, lon, a), a.key) for a in all_areas)
    return key if distance <= TOLERANCE_M else None
