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
import socket
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


def _run(*args: str) -> tuple[int, str]:
    binary = find_influxd()
    if binary is None:
        raise BackupError("influxd not found (Debian package influxdb): InfluxDB is backed up with it")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]  # failure: stderr
    return done.returncode, lines[-1] if lines else f"exit {done.returncode}"


def _influxd(*args: str) -> None:
    code, last = _run(*args)
    if code != 0:
        raise BackupError(f"influxd {args[0]} failed: {last}")


def version() -> str:
    code, last = _run("version")
    if code != 0:
        raise BackupError(f"influxd version failed: {last}")
    return last.strip()


def check_supported(access: InfluxAccess) -> None:
    if access.settings.version != "1":
        raise BackupError(
            f"InfluxDB {access.settings.version}.x: not covered by bcc backup (use that version's own "
            "`influx backup`); only 1.x is"
        )


def _answers(rpc: str) -> None:
    """Fail fast on a wrong ``--influx-rpc``: influxd itself retries a refused connection for about four
    minutes (measured on 1.6.7) before it gives up."""
    host, _, port = rpc.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError) as err:
        raise BackupError(
            f"influxd's backup service at {rpc} does not answer ({err}): "
            "--influx-rpc must be influxd's bind-address"
        ) from err


def backup(rpc: str, database: str, dest: Path) -> int:
    """The portable backup of ``database`` as one tar archive at ``dest``; the number of files in it."""
    _answers(rpc)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".influxdb.") as tmp:
        _influxd("backup", "-portable", "-host", rpc, "-db", database, tmp)
        if not any(Path(tmp).glob("*.manifest")):
            raise BackupError(f"influxd backup of {database!r} wrote no manifest")
        return tar_dir(Path(tmp), dest).files


def restore(rpc: str, database: str, source: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="bcc-influxdb-restore."))  # the backup may be read-only
    try:
        untar_dir(source, work, replace=True)
        _influxd("restore", "-portable", "-host", rpc, "-db", database, str(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def exists(rpc: str, database: str) -> bool:
    """Does ``database`` exist, asked through the backup service (no InfluxDB account needed: with
    authentication on, ``SHOW DATABASES`` lists only databases the account holds a grant on, and a
    dropped database takes its grants along). A backup from a time no point has is cheap; measured on
    1.6.7, for a database that does not exist it fails with "EOF"."""
    _answers(rpc)
    with tempfile.TemporaryDirectory(prefix=".influxdb-check.") as tmp:
        code, last = _run(
            "backup", "-portable", "-host", rpc, "-db", database, "-start", "2100-01-01T00:00:00Z", tmp
        )
    if code == 0:
        return True
    if last.endswith("EOF"):
        return False
    raise BackupError(f"influxd's backup service at {rpc}: {last}")


async def drop_database(access: InfluxAccess) -> None:
    client = InfluxClient(access.settings, access.password, access.token)
    try:
        await client.query(f'DROP DATABASE "{access.settings.database}"', post=True)
    except InfluxError as err:
        raise BackupError(
            f"cannot drop InfluxDB database {access.settings.database!r} ({err}): drop it as InfluxDB's admin"
        ) from err
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
        raise BackupError(
            f"InfluxDB's data is restored but its continuous query is not ({err}): run the InfluxDB "
            "provisioning as InfluxDB's admin (users and grants are never in a backup)"
        ) from err
    finally:
        await client.aclose()
