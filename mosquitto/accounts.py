"""Broker accounts: one user per role, passwords from secrets (never defaults), the hashed password file."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from bcc_common.ident import IDENT_RE
from mosquitto.errors import BrokerError, MissingSecretsError

# Usernames are role names; the ACL (mosquitto/acl) grants each one its topics.
ROLES: tuple[str, ...] = ("gateway", "recorder", "portal", "operator", "readonly", "homeassistant", "alarms")
MIN_PASSWORD_LEN = 12


def read_role_secrets(
    roles: Iterable[str] = ROLES, env: Mapping[str, str] | None = None, secrets_dir: Path | None = None
) -> dict[str, str]:
    """Password of each role from ``BCC_MQTT_PASSWORD_<ROLE>`` or else ``<secrets_dir>/mqtt_<role>``.

    There is no default password: raises MissingSecretsError naming every missing or short secret.
    """
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    problems: list[str] = []
    for role in roles:
        var = "BCC_MQTT_PASSWORD_" + role.upper()
        value = env.get(var, "")
        if not value and secrets_dir is not None and (secrets_dir / f"mqtt_{role}").is_file():
            value = (secrets_dir / f"mqtt_{role}").read_text(encoding="utf-8").strip("\r\n")
        if not value:
            where = f"${var}" + (f" or {secrets_dir / f'mqtt_{role}'}" if secrets_dir else "")
            problems.append(f"{role}: missing ({where})")
        elif len(value) < MIN_PASSWORD_LEN or "\n" in value:
            problems.append(f"{role}: must be one line of at least {MIN_PASSWORD_LEN} characters")
        else:
            found[role] = value
    if problems:
        raise MissingSecretsError(problems)
    return found


def generate_demo_secrets(roles: Iterable[str] = ROLES) -> dict[str, str]:
    """Random passwords for tests and the demo (never written to the repository)."""
    return {role: secrets.token_urlsafe(18) for role in roles}


def write_password_file(path: Path, users: Mapping[str, str], *, passwd_binary: str | None = None) -> Path:
    """Write a hashed Mosquitto password file (mode 0600), replacing ``path`` atomically.

    Passwords never appear on a command line: a 0600 plain-text file next to ``path`` is hashed in place
    by ``mosquitto_passwd -U`` and then renamed over ``path``.
    """
    bad = [u for u, p in users.items() if not IDENT_RE.match(u) or not p or "\n" in p or "\r" in p]
    if bad or not users:
        raise BrokerError(f"invalid users for the password file: {bad or 'none given'}")
    binary = passwd_binary or shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"{user}:{password}\n" for user, password in users.items())
        done = subprocess.run([binary, "-U", str(tmp)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"mosquitto_passwd -U failed: {done.stderr.strip() or done.stdout.strip()}")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except FileNotFoundError as err:
        raise BrokerError(f"{binary} not found (Debian package: mosquitto)") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path
