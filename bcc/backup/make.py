"""``bcc backup --out DIR``: the portal's database, its media folder (photos, the wall's kiosk-token
registry and layouts), InfluxDB and the recorder's spool, the configuration files, and with
``--with-secrets`` the secrets; a manifest with each part's size and SHA-256 is written last.

Order matters for consistency while the services run: the database before the media (a photo file is
written before its row, so every photo the dump references is in the archive), the spool before
InfluxDB (a point leaves the spool only once InfluxDB has it, so every point is in one or the other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from importlib import resources
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from bcc.backup import database, files, influx
from bcc.backup.manifest import PRIVATE_DIR, PRIVATE_FILE, BackupError, Part, describe, write_manifest
from bcc.backup.sources import RecorderSide, add_recorder_arguments, portal_settings, recorder_side
from bcc_common.timefmt import iso, utc_now
from portal.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="new or empty folder for the backup")
    parser.add_argument("--no-portal", action="store_true", help="leave out the portal (database, media)")
    add_recorder_arguments(parser)
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="a configuration file to include (repeatable)",
    )
    parser.add_argument(
        "--with-secrets", action="store_true", help="also the secrets the services read (secrets.json, 0600)"
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        parts = make_backup(args)
    except BackupError as err:
        print(f"bcc backup: {err} (no manifest written: {args.out} is not a usable backup)", file=sys.stderr)
        return 2
    total = sum(p.size for p in parts)
    for p in parts:
        print(f"{p.name:<14} {p.file:<18} {p.size:>12} bytes")
    print(
        f"backup complete: {args.out} ({len(parts)} parts, {total} bytes, {time.monotonic() - started:.1f} s)"
    )
    return 0


def make_backup(args: argparse.Namespace) -> list[Part]:
    out: Path = args.out
    if out.exists() and not files.is_empty_dir(out):
        raise BackupError(f"{out} is not empty: back up into a new folder")
    portal = None if args.no_portal else portal_settings()
    recorder = recorder_side(args)
    if recorder is not None:
        influx.check_supported(recorder.access)
    for path in args.config:
        if not path.is_file():
            raise BackupError(f"--config {path}: no such file")
    files.private_dir(out)
    out.chmod(PRIVATE_DIR)
    parts: list[Part] = []
    meta: dict[str, Any] = {
        "created_at": iso(utc_now()),
        "host": platform.node(),
        "tools": {
            "bcc": package_version("bcc"),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
    }
    config = list(args.config)
    if portal is not None:
        parts += _portal(portal, out, meta)
        config += [portal.site_file, portal.scenes_file]
    if recorder is not None:
        parts += _recorder(recorder, out, meta)
        config.append(recorder.site)
    # files shipped in the installed packages (the demo site, the default scenes) come with the release
    unique = [p for p in dict.fromkeys(p.resolve() for p in config) if not _packaged(p)]
    names = files.tar_files(unique, out / "config.tar")
    parts.append(describe(out, "config", "config.tar", files=names))
    if args.with_secrets:
        parts.append(_secrets(portal, recorder, out))
    write_manifest(out, parts, meta)
    return parts


def _packaged(path: Path) -> bool:
    return any(
        path.is_relative_to(Path(str(resources.files(pkg))).resolve()) for pkg in ("devices", "portal")
    )


def _portal(settings: Settings, out: Path, meta: dict[str, Any]) -> list[Part]:
    url = settings.database_url
    kind = database.kind(url)
    revision, head = database.revisions(url)
    meta["migration"] = {"database": revision, "head": head}
    meta["tools"]["database"] = database.server_version(url)
    if kind == "postgresql":
        meta["tools"]["pg_dump"] = database.tool_version("pg_dump")
    file = "portal.pgdump" if kind == "postgresql" else "portal.sqlite3"
    database.dump(url, out / file)
    db = describe(out, "portal-db", file, kind=kind, revision=revision)
    media_dir = settings.media_dir
    archived = files.tar_dir(media_dir, out / "media.tar")
    kiosk = (media_dir / "wall_kiosk.json").is_file()
    media = describe(
        out, "media", "media.tar", files=archived.files, vanished=archived.vanished, kiosk_registry=kiosk
    )
    # the portal's settings for the record (its environment is configuration, restored with --config)
    meta["portal"] = {
        **settings.model_dump(mode="json", exclude={"secret_key", "open311_api_keys", "mqtt"}),
        "database_url": make_url(url).render_as_string(hide_password=True),
        "media_dir": str(media_dir.absolute()),
        "mqtt": settings.mqtt.model_dump(mode="json", exclude={"password"}) if settings.mqtt else None,
    }
    return [db, media]


def _recorder(recorder: RecorderSide, out: Path, meta: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    if recorder.spool.exists():  # first: see the module docstring
        files.copy_sqlite(recorder.spool, out / "spool.sqlite3")
        parts.append(describe(out, "recorder-spool", "spool.sqlite3", path=str(recorder.spool)))
    meta["tools"]["influxd"] = influx.version()
    database_name = recorder.access.settings.database
    count = influx.backup(recorder.rpc, database_name, out / "influxdb.tar")
    parts.append(describe(out, "influxdb", "influxdb.tar", database=database_name, files=count))
    return parts


def _secrets(portal: Settings | None, recorder: RecorderSide | None, out: Path) -> Part:
    """The secrets by the variable that names them (each service also reads ``VAR_FILE``)."""
    values: dict[str, str] = {}
    if portal is not None:
        values["BCC_PORTAL_SECRET_KEY"] = portal.secret_key.get_secret_value()
        values["BCC_PORTAL_DATABASE_URL"] = portal.database_url
        if portal.open311_api_keys:
            keys = ",".join(k.get_secret_value() for k in portal.open311_api_keys)
            values["BCC_PORTAL_OPEN311_API_KEYS"] = keys
        if portal.mqtt is not None:
            values["BCC_MQTT_PASSWORD_PORTAL"] = portal.mqtt.password.get_secret_value()
    if recorder is not None and recorder.access.password:
        values["BCC_INFLUX_PASSWORD"] = recorder.access.password
    if recorder is not None and recorder.access.token:
        values["BCC_INFLUX_TOKEN"] = recorder.access.token
    fd = os.open(out / "secrets.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=1, sort_keys=True)
    return describe(out, "secrets", "secrets.json", names=sorted(values))
