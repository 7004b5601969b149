"""Files in a backup: a folder as a tar archive (the portal's media folder: photos, the wall's kiosk-token
registry and layouts), SQLite copies through the online backup API (the recorder's spool), and single
configuration files put back where they were."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bcc.backup.manifest import PRIVATE_DIR, PRIVATE_FILE, BackupError


def private_dir(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


@dataclass(frozen=True)
class Archived:
    files: int
    vanished: int  # deleted between listing and reading: temporary files, a failed submission's photo


def tar_dir(source: Path, dest: Path) -> Archived:
    """Archive every file under ``source`` (names relative to it; no folder yet: an empty archive). A file
    that cannot be read fails the backup (it is never silently partial); one that was deleted meanwhile
    is counted, not an error: the portal writes a photo before its row and replaces its JSON files by
    renaming a temporary file, so what disappears while the services run was never needed."""
    if source.exists() and not source.is_dir():
        raise BackupError(f"{source}: not a folder")
    count = vanished = 0
    with tarfile.open(dest, "w") as tar:
        for path in _walk(source) if source.exists() else []:
            try:
                tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
            except FileNotFoundError:
                vanished += 1
                continue
            except OSError as err:
                raise BackupError(f"cannot read {path}: {err.strerror or err}") from err
            count += path.is_file()
    return Archived(count, vanished)


def _walk(top: Path) -> list[Path]:
    """Every folder and file under ``top``, sorted; an unreadable folder raises (``rglob`` skips it)."""

    def fail(err: OSError) -> None:
        raise BackupError(f"cannot read {err.filename}: {err.strerror or err}") from err

    found: list[Path] = []
    for root, dirs, names in os.walk(top, onerror=fail):
        found += [Path(root, n) for n in dirs + names]
    return sorted(found)


def untar_dir(source: Path, dest: Path, replace: bool) -> int:
    """Unpack an archive made by :func:`tar_dir` into ``dest`` (emptied first when ``replace``)."""
    if replace and dest.exists():
        shutil.rmtree(dest)
    private_dir(dest)
    dest.chmod(PRIVATE_DIR)
    with tarfile.open(source) as tar:
        members = tar.getmembers()
        tar.extractall(dest, filter="data")  # refuses absolute names, links out of dest, devices
    return sum(m.isfile() for m in members)


def copy_sqlite(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), 0600, in rollback-journal mode: one
    self-contained file that can be read from read-only media (a WAL file needs its -shm beside it);
    the portal and the recorder switch their databases to WAL again when they open them."""
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE))
    try:
        src = sqlite3.connect(source.absolute().as_uri() + "?mode=ro", uri=True)
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as err:
        raise BackupError(f"cannot copy SQLite database {source}: {err}") from err


def restore_sqlite(source: Path, target: Path) -> None:
    """Replace ``target`` (the service stopped) with a copy of ``source``, checked, 0600."""
    if not target.parent.exists():
        private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.restoring")
    tmp.unlink(missing_ok=True)
    copy_sqlite(source, tmp)
    # A -wal left beside the old file would be replayed into the restored one: remove it first.
    for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)
    os.replace(tmp, target)
    with contextlib.closing(sqlite3.connect(target)) as check:
        if check.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"restored database {target} fails SQLite's quick_check")


def tar_files(paths: list[Path], dest: Path) -> list[str]:
    """Archive single files under their absolute paths (configuration); the paths archived."""
    names: list[str] = []
    with tarfile.open(dest, "w") as tar:
        for path in paths:
            path = path.resolve()
            try:
                tar.add(path, arcname=str(path).lstrip("/"), recursive=False)
            except OSError as err:
                raise BackupError(f"cannot read {path}: {err.strerror or err}") from err
            names.append(str(path))
    return names


def config_conflicts(source: Path) -> list[str]:
    """Files of the archive that exist with other content where they would go back."""
    found: list[str] = []
    with tarfile.open(source) as tar:
        for member in tar.getmembers():
            target = Path("/" + member.name)
            data = tar.extractfile(member)
            if target.exists() and data is not None and target.read_bytes() != data.read():
                found.append(str(target))
    return found


def restore_files(source: Path) -> list[str]:
    """Put every archived file back at its path with its mode (atomically; one already there with the
    same content is left alone); the paths written."""
    written: list[str] = []
    with tarfile.open(source) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member)
            if data is None:
                continue
            content = data.read()
            target = Path("/" + member.name)
            if target.is_file() and target.read_bytes() == content:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.restoring")
            with open(tmp, "wb") as f:
                f.write(content)
            tmp.chmod(member.mode & 0o777)
            os.replace(tmp, target)
            written.append(str(target))
    return written
