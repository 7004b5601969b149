"""The ``bcc`` command line: one entry point with a subcommand for every service."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bcc import logs

# subcommand -> (module with add_arguments/run, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("bcc.demo", "run the demo room: simulators, broker and gateway"),
    "gateway": ("iot_gateway.cli", "run the MQTT<->Modbus gateway (or --check-config)"),
    "simulate": ("simulators.cli", "serve simulated Modbus devices for a site"),
    "broker": ("mosquitto.cli", "Mosquitto tooling: password file and runtime config"),
    "bench": ("bench.cli", "benchmarks that print JSON with the raw ceiling measured alongside"),
    "portal": ("portal.cli", "citizen portal: serve it, or apply its database migrations"),
    "admin": ("portal.admin", "portal staff accounts: create, list, deactivate, reset password or 2FA"),
    "recorder": ("iot_gateway.recorder.cli", "record MQTT state and report events into InfluxDB"),
    "influx": (
        "iot_gateway.recorder.influx_admin",
        "InfluxDB 1.x as its admin: provision the database, retention policies and users",
    ),
    "alarms": ("iot_gateway.alarms.cli", "evaluate alarm rules on MQTT state and publish alarm states"),
    "install": ("bcc.install", "install the services on this server from one settings file (as root)"),
    "grafana": ("grafana.cli", "build the Grafana dashboards (JSON) from the profiles and the site"),
    "backup": (
        "bcc.backup.make",
        "back up the portal's database and photos, InfluxDB, spool and configuration",
    ),
    "restore": ("bcc.backup.restore", "restore a backup made by bcc backup (checksums first; empty targets)"),
}


def _import(module: str) -> ModuleType:
    """Import a subcommand's module. The benchmarks (``bench/``) are test equipment kept out of the
    installed packages: ``bcc bench`` finds them in the source checkout this ``bcc`` came from."""
    if module.startswith("bench."):
        checkout = Path(__file__).resolve().parents[1]
        if not (checkout / "bench" / "__init__.py").is_file():
            sys.exit("bcc bench: the benchmarks are not installed; run them from a source checkout")
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
    return importlib.import_module(module)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser of the chosen subcommand only: other services' modules (and their
    dependencies, e.g. the portal's web stack for ``bcc gateway``) are not imported."""
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args if a in SUBCOMMANDS), None)
    parser = argparse.ArgumentParser(prog="bcc", description="Binjai Command Center")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    parser.add_argument("--log-format", choices=["json", "console"], default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _import(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    result = _import(args._module).run(args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
