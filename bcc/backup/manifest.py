"""The manifest of a backup: every part with its file, size and SHA-256, the tool versions and the
portal's migration revision. It is written last, so a backup without one is incomplete."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "bcc-backup/1"
MANIFEST = "manifest.json"
PRIVATE_FILE = 0o600  # the backup holds reporters' names, phones and e-mails
PRIVATE_DIR = 0o700


class BackupError(Exception):
    """A backup or restore cannot go on; the message is one line for the operator."""


@dataclass(frozen=True)
class Part:
    """One file of the backup: what it holds (``name``), where, how big, its checksum, and details."""

    name: str
    file: str
    size: int
    sha256: str
    info: Mapping[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe(out: Path, name: str, file: str, **info: Any) -> Part:
    """The manifest entry of ``out/file``, made private (0600)."""
    path = out / file
    path.chmod(PRIVATE_FILE)
    return Part(name, file, path.stat().st_size, sha256_file(path), info)


def write_manifest(out: Path, parts: list[Part], meta: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (temporary file, then rename): its presence marks a complete
    backup."""
    body = {"format": FORMAT, **meta, "parts": [asdict(p) for p in parts]}
    tmp = out / (MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    path = out / MANIFEST
    os.replace(tmp, path)
    return path


def read_verified(backup: Path) -> tuple[dict[str, Any], dict[str, Part]]:
    """The manifest and its parts by name, after checking every part's size and SHA-256; BackupError
    names the first problem (missing manifest, missing or changed file)."""
    if not backup.is_dir():
        raise BackupError(f"{backup}: no such backup directory")
    path = backup / MANIFEST
    if not path.is_file():
        raise BackupError(f"{backup}: no {MANIFEST}: the backup is incomplete (it stopped before the end)")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != FORMAT:
            raise BackupError(f"{path}: format {body.get('format')!r}, this release reads {FORMAT!r}")
        parts = {
            p["name"]: Part(p["name"], p["file"], int(p["size"]), p["sha256"], p["info"])
            for p in body["parts"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise BackupError(f"{path}: unreadable manifest ({type(err).__name__}: {err})") from err
    for part in parts.values():
        file = backup / part.file
        where = f"backup {backup} is corrupt: part {part.name} ({part.file})"
        if not file.is_file():
            raise BackupError(f"{where}: file missing")
        if file.stat().st_size != part.size:
            raise BackupError(f"{where}: {file.stat().st_size} bytes, the manifest says {part.size}")
        if sha256_file(file) != part.sha256:
            raise BackupError(f"{where}: SHA-256 differs from the manifest")
    return body, parts
