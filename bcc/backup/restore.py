"""``bcc restore DIR``: check every part's checksum, check that every target is empty (or ``--force``),
then put back the configuration, the secrets (with ``--secrets-dir``), the portal's database and media
folder, the recorder's spool and InfluxDB. Stop the portal and the recorder first."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from sqlalchemy import make_url

from bcc.backup import database, files, influx
from bcc.backup.manifest import PRIVATE_FILE, BackupError, Part, read_verified
from bcc.backup.sources import RecorderSide, add_recorder_arguments, portal_settings, recorder_side
from portal.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backup", type=Path, help="a folder written by bcc backup")
    parser.add_argument("--force", action="store_true", help="replace targets that are not empty")
    add_recorder_arguments(parser)
    parser.add_argument(
        "--secrets-dir", type=Path, help="write the backup's secrets here, one 0600 file per variable"
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        done = restore_backup(args)
    except BackupError as err:
        print(f"bcc restore: {err}", file=sys.stderr)
        return 2
    for line in done:
        print(line)
    print(f"restore complete from {args.backup} ({time.monotonic() - started:.1f} s)")
    return 0


def restore_backup(args: argparse.Namespace) -> list[str]:
    """Restore every part of the backup; the lines to print. Nothing is written before every check
    (checksums, versions, empty targets) has passed."""
    _meta, parts = read_verified(args.backup)
    portal = portal_settings() if "portal-db" in parts else None
    recorder = recorder_side(args)
    if recorder is None and ("influxdb" in parts or "recorder-spool" in parts):
        raise BackupError("the backup holds InfluxDB data: give --recorder-site (the recorder's site file)")
    if recorder is not None and "influxdb" in parts:
        influx.check_supported(recorder.access)
    if portal is not None:
        _check_database(portal, parts["portal-db"])
    occupied = _occupied(args, parts, portal, recorder)
    if occupied and not args.force:
        raise BackupError("not empty: " + "; ".join(occupied) + " (--force replaces them)")
    return _restore(args, parts, portal, recorder, bool(occupied))


def _check_database(portal: Settings, part: Part) -> None:
    kind = database.kind(portal.database_url)
    if part.info.get("kind") != kind:
        raise BackupError(f"the backup's portal database is {part.info.get('kind')}, this portal's is {kind}")
    revision = part.info.get("revision")
    database.check_known(revision if isinstance(revision, str) else None)


def _occupied(
    args: argparse.Namespace, parts: dict[str, Part], portal: Settings | None, recorder: RecorderSide | None
) -> list[str]:
    found: list[str] = []
    if portal is not None:
        if not database.is_empty(portal.database_url):
            url = make_url(portal.database_url).render_as_string(hide_password=True)
            found.append(f"portal database {url}")
        if "media" in parts and not files.is_empty_dir(portal.media_dir):
            found.append(f"media folder {portal.media_dir}")
    if recorder is not None:
        if "recorder-spool" in parts and recorder.spool.exists():
            found.append(f"recorder spool {recorder.spool}")
        if "influxdb" in parts and influx.exists(recorder.rpc, recorder.access.settings.database):
            found.append(f"InfluxDB database {recorder.access.settings.database!r}")
    if "config" in parts:
        found += [
            f"configuration file {p} (differs)" for p in files.config_conflicts(args.backup / "config.tar")
        ]
    if "secrets" in parts and args.secrets_dir is not None:
        for name, value in _secrets(args.backup).items():
            path = args.secrets_dir / name
            if path.exists() and path.read_text(encoding="utf-8").strip() != value:
                found.append(f"secret file {path} (differs)")
    return found


def _secrets(backup: Path) -> dict[str, str]:
    try:
        values = json.loads((backup / "secrets.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BackupError(f"{backup}/secrets.json unreadable: {err}") from err
    return {str(k): str(v) for k, v in values.items()}


def _restore(
    args: argparse.Namespace,
    parts: dict[str, Part],
    portal: Settings | None,
    recorder: RecorderSide | None,
    replace: bool,
) -> list[str]:
    backup: Path = args.backup
    lines: list[str] = []
    if recorder is not None and "influxdb" in parts and replace:
        _drop_influx_first(recorder)
    if "config" in parts:
        written = files.restore_files(backup / "config.tar")
        lines.append(f"config: {len(written)} files")
    if "secrets" in parts:
        lines.append(_restore_secrets(backup, args.secrets_dir))
    if portal is not None:
        database.restore(portal.database_url, backup / parts["portal-db"].file, replace)
        lines.append(f"portal database: restored at migration {parts['portal-db'].info.get('revision')}")
        if "media" in parts:
            count = files.untar_dir(backup / "media.tar", portal.media_dir, replace=True)
            lines.append(f"media: {count} files into {portal.media_dir}")
    if recorder is not None:
        if "recorder-spool" in parts:
            files.restore_sqlite(backup / "spool.sqlite3", recorder.spool)
            lines.append(f"recorder spool: {recorder.spool}")
        if "influxdb" in parts:
            lines.append(_restore_influx(backup, recorder))
    return lines


def _restore_secrets(backup: Path, secrets_dir: Path | None) -> str:
    values = _secrets(backup)
    if secrets_dir is None:
        return f"secrets: {len(values)} kept in {backup}/secrets.json (not installed: no --secrets-dir)"
    files.private_dir(secrets_dir)
    for name, value in values.items():
        path = secrets_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        path.chmod(PRIVATE_FILE)
    return f"secrets: {len(values)} files in {secrets_dir} (point each service's VAR_FILE there)"


def _drop_influx_first(recorder: RecorderSide) -> None:
    """Drop the database a forced restore replaces, before anything else is written: it is the one step
    that may be refused (an account that may not drop databases)."""
    if influx.exists(recorder.rpc, recorder.access.settings.database):
        asyncio.run(influx.drop_database(recorder.access))


def _restore_influx(backup: Path, recorder: RecorderSide) -> str:
    access = recorder.access
    influx.restore(recorder.rpc, access.settings.database, backup / "influxdb.tar")
    asyncio.run(influx.provision(access, recorder.measurements))
    return f"InfluxDB: database {access.settings.database!r} restored and provisioned"
