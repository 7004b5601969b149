"""InfluxDB 1.x in a backup: ``influxd backup -portable -db <database>`` through influxd's backup service
(``bind-address``, 127.0.0.1:8088 by default; it has no authentication, so it must stay on loopback) and
``influxd restore -portable``.

Measured on Debian's 1.6.7: the backup includes points still in the write-ahead log (written a moment
before); a restore brings back the database with its retention policies and points, but neither its
continuous queries nor the users (also not with a full, all-database backup), and it refuses a database
that exists ("database may already exist"). The recorder's provisioning re-creates the continuous query
(:func:`provision`, also run by the recorder on start); users are the installer's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bcc.backup.files import tar_dir, untar_dir
from bcc.backup.manifest import BackupError
from iot_gateway.recorder.config import InfluxAccess
from iot_gateway.recorder.influx import InfluxClient, InfluxError
from iot_gateway.recorder.influxd import find_influxd
from iot_gateway.recorder.provision import ensure_schema


def _influxd(*args: str) -> str:
    binary = find_influxd()
    if binary is None:
        raise BackupError("influxd not found (Debian package influxdb): InfluxDB is backed up with it")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise BackupError(f"influxd {args[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout + done.stderr


def version() -> str:
    return _influxd("version").strip()


def check_supported(access: InfluxAccess) -> None:
    if access.settings.version != "1":
        raise BackupError(
            f"InfluxDB {access.settings.version}.x: not covered by bcc backup (use that version's own "
            "`influx backup`); only 1.x is"
        )


def backup(rpc: str, database: str, dest: Path) -> int:
    """The portable backup of ``database`` as one tar archive at ``dest``; the number of files in it."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".influxdb.") as tmp:
        _influxd("backup", "-portable", "-host", rpc, "-db", database, tmp)
        if not any(Path(tmp).glob("*.manifest")):
            raise BackupError(f"influxd backup of {database!r} wrote no manifest")
        return tar_dir(Path(tmp), dest).files


def restore(rpc: str, database: str, source: Path) -> None:
    work = Path(tempfile.mkdtemp(dir=source.parent, prefix=".influxdb-restore."))
    try:
        untar_dir(source, work, replace=True)
        _influxd("restore", "-portable", "-host", rpc, "-db", database, str(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def has_database(access: InfluxAccess) -> bool:
    client = InfluxClient(access.settings, access.password, access.token)
    try:
        results = await client.query("SHOW DATABASES")
    except InfluxError as err:
        raise BackupError(f"InfluxDB at {access.settings.url}: {err}") from err
    finally:
        await client.aclose()
    names = {row[0] for s in results[0].get("series", []) for row in s.get("values", [])}
    return access.settings.database in names


async def drop_database(access: InfluxAccess) -> None:
    client = InfluxClient(access.settings, access.password, access.token)
    try:
        await client.query(f'DROP DATABASE "{access.settings.database}"', post=True)
    except InfluxError as err:
        raise BackupError(f"cannot drop InfluxDB database {access.settings.database!r}: {err}") from err
    finally:
        await client.aclose()


async def provision(access: InfluxAccess, measurements: Iterable[str]) -> None:
    """Re-create what a restore leaves out and the recorder would create (the continuous query)."""
    if not access.settings.manage_schema:
        return
    client = InfluxClient(access.settings, access.password, access.token)
    try:
        await ensure_schema(client, access.settings, measurements)
    except InfluxError as err:
        raise BackupError(f"InfluxDB restored but not provisioned: {err}") from err
    finally:
        await client.aclose()
