"""Secrets from the environment or from files: ``VAR`` wins, else the file named by ``VAR_FILE``.

Every BCC service reads its secrets this way (docs/configuration.md), so a deployment can keep them in
0600 files instead of the environment of a process, which other users may read through /proc.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SecretFileError(Exception):
    """A secret file was named but could not be read; the message names the variable and the file."""


def read_secret(env: Mapping[str, str], var: str, file: str | Path | None = None) -> str | None:
    """``env[var]``, else the stripped content of ``env[var + "_FILE"]`` or ``file``; None if unset.

    Raises SecretFileError (with the variable and path in its message) when a named file is unreadable.
    An empty value or file counts as unset.
    """
    value = env.get(var) or None
    if value is not None:
        return value
    path = env.get(var + "_FILE") or (str(file) if file else None)
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as err:
        raise SecretFileError(f"{var}_FILE {path}: {err.strerror or err}") from err
