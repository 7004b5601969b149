"""``bcc recorder``: record MQTT state, availability, health and report events into InfluxDB."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bcc_common.sdnotify import ready_when, stopping
from devices.loader import DEMO_SITE, PROFILE_DIR, ConfigError
from iot_gateway.recorder.config import RecorderConfig, load_recorder_config
from iot_gateway.recorder.service import Recorder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=str(DEMO_SITE), help="site YAML file (default: the demo room)")
    parser.add_argument(
        "--profiles", type=Path, action="append", default=[], help="extra profile directory (repeatable)"
    )
    parser.add_argument("--spool", type=Path, default=None, help="spool file (default: influxdb.spool_path)")
    parser.add_argument(
        "--check-config", action="store_true", help="validate the site and secrets, print every problem, exit"
    )


def _load(site: str, profiles: list[Path]) -> RecorderConfig | None:
    try:
        return load_recorder_config(site, profile_dirs=(PROFILE_DIR, *profiles))
    except ConfigError as err:
        print(f"configuration invalid ({len(err.problems)} problems):", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


async def serve(config: RecorderConfig, spool: Path | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, stop)
    recorder = Recorder(config, spool)
    # systemd (Type=notify, deploy/systemd/): started means subscribed at the broker; InfluxDB may be
    # down (the spool keeps what arrives), which the bcc_recorder_influxdb_up metric shows
    ready = loop.create_task(ready_when(recorder.intake.connected, "connected to the MQTT broker"))
    try:
        await recorder.run(stop)
    finally:
        ready.cancel()
    return 0


def run(args: argparse.Namespace) -> int:
    config = _load(args.site, args.profiles)
    if config is None:
        return 2
    if args.check_config:
        influx = config.influx
        print(f"configuration ok: InfluxDB {influx.version} at {influx.url}, database {influx.database}")
        return 0
    return asyncio.run(serve(config, args.spool))
