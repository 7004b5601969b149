"""``bcc grafana build [--site FILE] [--out DIR]``: write the dashboards as deterministic JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from devices.loader import DEMO_SITE, ConfigError, load_site
from grafana.build import DASHBOARD_DIR, write_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="grafana_command", required=True)
    build = sub.add_parser("build", help="generate dashboards from the profiles and the site")
    build.add_argument("--site", default=str(DEMO_SITE), help="site YAML file (default: the demo room)")
    build.add_argument("--out", type=Path, default=DASHBOARD_DIR, help=f"directory (default {DASHBOARD_DIR})")


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site)
    except ConfigError as err:
        print("\n".join(err.problems))
        return 2
    for path in write_all(loaded, args.out):
        print(path)
    return 0
