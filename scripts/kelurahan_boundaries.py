"""Build portal/data/kelurahan.json (Binjai's kelurahan boundaries) from cahyadsn/wilayah_boundaries.

Usage: python scripts/kelurahan_boundaries.py wilayah_boundaries_kel_12.75.sql > portal/data/kelurahan.json

The input is db/kel/12/wilayah_boundaries_kel_12.75.sql of https://github.com/cahyadsn/wilayah_boundaries
(MIT License, Copyright (c) 2024 Cahya DSN; boundaries per Kepmendagri No 300.2.2-2430 Tahun 2025,
simplified polygons, [lat, lng] pairs). Names are matched to the keys of portal/data/areas.yaml;
coordinates are rounded to 5 decimals (about 1 m), which keeps the file small.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROW = re.compile(r"\('(12\.75\.\d\d\.\d{4})','([^']*)',([\d.\-]+),([\d.\-]+),'(\[.*?\])'\)")
SPELLING = {"sukaramai": "suka_ramai"}  # the source's spelling -> our key


def main(sql_path: str) -> None:
    areas = yaml.safe_load((Path(__file__).parents[1] / "portal/data/areas.yaml").read_text())
    keys = {k: kec for kec, v in areas.items() for k in v["kelurahan"]}
    out = {}
    for code, name, lat, lng, path in ROW.findall(Path(sql_path).read_text(encoding="utf-8")):
        key = name.lower().replace(" ", "_")
        key = SPELLING.get(key, key)
        if key not in keys:
            raise SystemExit(f"unknown kelurahan {name!r}")
        rings = json.loads(path)
        while isinstance(rings[0][0][0], list):  # a multipolygon: flatten to its rings
            rings = [ring for poly in rings for ring in poly]
        out[key] = {
            "code": code,
            "centroid": [round(float(lat), 5), round(float(lng), 5)],
            "rings": [[[round(a, 5), round(b, 5)] for a, b in ring] for ring in rings],
        }
    if set(out) != set(keys):
        raise SystemExit(f"missing kelurahan: {sorted(set(keys) - set(out))}")
    doc = {
        "source": "cahyadsn/wilayah_boundaries, db/kel/12/wilayah_boundaries_kel_12.75.sql "
        "(boundaries per Kepmendagri No 300.2.2-2430 Tahun 2025, simplified polygons)",
        "licence": "MIT License, Copyright (c) 2024 Cahya DSN",
        "built_by": "scripts/kelurahan_boundaries.py",
        "coordinates": "[lat, lon] pairs, WGS 84; each ring closed",
        "kelurahan": dict(sorted(out.items())),
    }
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
