"""A PEP 517 build backend in 20 lines, for tests/deploy/test_install.py: a source tree with this file
and ``backend-path = ["."]`` installs with pip offline (no setuptools, no wheel package needed)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "bcc", "0.0.1"
DIST = f"{NAME}-{VERSION}.dist-info"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    wheel_directory: str, config_settings: object = None, metadata_directory: object = None
) -> str:
    """A wheel of the ``bcc`` package in the current directory with a ``bcc`` console script."""
    files = {p.as_posix(): p.read_bytes() for p in sorted(Path("bcc").rglob("*.py"))}
    files[f"{DIST}/METADATA"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()
    files[f"{DIST}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{DIST}/entry_points.txt"] = b"[console_scripts]\nbcc = bcc.cli:main\n"
    record = "".join(f"{p},sha256={_digest(d)},{len(d)}\n" for p, d in files.items()) + f"{DIST}/RECORD,,\n"
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
        z.writestr(f"{DIST}/RECORD", record)
    return name
