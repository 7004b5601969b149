"""``bcc alarms``: evaluate the site's alarm rules on MQTT state and publish alarm states (docs/alarms.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from devices.loader import DEMO_SITE, PROFILE_DIR, ConfigError
from iot_gateway.alarms.config import DEFAULT_STATE, AlarmsConfig, load_alarms_config
from iot_gateway.alarms.service import AlarmService
from iot_gateway.alarms.store import StoreError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=str(DEMO_SITE), help="site YAML file (default: the demo room)")
    parser.add_argument(
        "--rules", type=Path, default=None, help="rules YAML file (default: devices/sites/alarms/<site>.yaml)"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help=f"state file (SQLite, default: ./{DEFAULT_STATE}) when BCC_ALARMS_DATABASE_URL is not set",
    )
    parser.add_argument(
        "--instance",
        default=None,
        help="this evaluator's name (default: <host>_<pid>); a standby needs its own",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="on-duty roster YAML for alarm e-mails (default: operator accounts on duty, admins escalate)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus /metrics and /healthz on 127.0.0.1:PORT (default: off)",
    )
    parser.add_argument(
        "--profiles", type=Path, action="append", default=[], help="extra profile directory (repeatable)"
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the site, rules and secrets, print every problem",
    )


def _load(args: argparse.Namespace) -> AlarmsConfig | None:
    try:
        return load_alarms_config(
            args.site,
            args.rules,
            args.state,
            profile_dirs=(PROFILE_DIR, *args.profiles),
            instance=args.instance,
            roster=args.roster,
        )
    except ConfigError as err:
        print(f"configuration invalid ({len(err.problems)} problems):", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


async def serve(config: AlarmsConfig) -> int:
    try:
        service = AlarmService(config, freeze_gc=True)
    except (StoreError, SQLAlchemyError) as err:
        print(f"state database unusable: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)
    return 0


def run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    if args.metrics_port:
        config = dataclasses.replace(config, metrics_port=args.metrics_port)
    if args.check_config:
        rules = config.rules
        print(f"configuration ok: {len(rules.book.rules)} rules, {len(rules.alarms)} alarms")
        return 0
    return asyncio.run(serve(config))
