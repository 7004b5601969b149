"""What a backup covers and where it lives, read from the settings the services themselves use: the
portal's ``BCC_PORTAL_*`` environment (``Settings.from_env``) and the recorder's site file with its
``BCC_INFLUX_*`` environment. Only the address of influxd's backup service is new (``--influx-rpc``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bcc.backup.manifest import BackupError
from devices.loader import PROFILE_DIR, ConfigError, load_site
from iot_gateway.recorder.config import InfluxAccess, resolve_influx
from portal.config import Settings, SettingsError

DEFAULT_INFLUX_RPC = "127.0.0.1:8088"  # influxd's own default bind-address


@dataclass(frozen=True)
class RecorderSide:
    """The recorder's InfluxDB (HTTP for queries, ``rpc`` for influxd backup/restore) and its spool."""

    site: Path
    access: InfluxAccess
    measurements: frozenset[str]
    spool: Path
    rpc: str


def add_recorder_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recorder-site", type=Path, help="the recorder's site file: InfluxDB and spool are covered with it"
    )
    parser.add_argument(
        "--profiles",
        type=Path,
        action="append",
        default=[],
        help="extra profile directory (as the recorder's)",
    )
    parser.add_argument(
        "--spool", type=Path, help="the recorder's spool file (default: influxdb.spool_path of the site)"
    )
    parser.add_argument(
        "--influx-rpc",
        default=DEFAULT_INFLUX_RPC,
        help=f"influxd's backup service, its bind-address (default {DEFAULT_INFLUX_RPC})",
    )


def portal_settings(env: Mapping[str, str] | None = None) -> Settings:
    try:
        return Settings.from_env(os.environ if env is None else env)
    except SettingsError as err:
        raise BackupError(str(err)) from err


def recorder_side(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> RecorderSide | None:
    if args.recorder_site is None:
        return None
    env = os.environ if env is None else env
    where = str(args.recorder_site)
    problems: list[str] = []
    try:
        loaded = load_site(args.recorder_site, (PROFILE_DIR, *args.profiles))
        access = resolve_influx(loaded, env, where, problems)
    except ConfigError as err:
        problems += err.problems
    if problems:
        raise BackupError("recorder site: " + "; ".join(problems))
    spool = args.spool or Path(access.settings.spool_path)
    measurements = frozenset(p.model for p in loaded.profiles.values())
    return RecorderSide(args.recorder_site, access, measurements, spool.absolute(), args.influx_rpc)
