"""Broker accounts: secrets per role (never defaults), accounts per process, the password file and ACL.

The roles and the account names are the contract's (bcc_contract/accounts.py): one account per process,
because the broker makes each client's id its username.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from bcc_common.ident import IDENT_RE
from bcc_contract.accounts import DEFAULT_ACCOUNTS, ROLES, account_names
from mosquitto.errors import BrokerError, MissingSecretsError

__all__ = ["DEFAULT_ACCOUNTS", "ROLES", "account_passwords", "render_acl"]
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


def account_passwords(
    role_secrets: Mapping[str, str], counts: Mapping[str, int] | None = None
) -> dict[str, str]:
    """Every account of the roles in ``role_secrets`` -> its role's password (the password file's users)."""
    counts = DEFAULT_ACCOUNTS if counts is None else counts
    return {
        name: secret
        for role, secret in role_secrets.items()
        for name in account_names(role, counts.get(role, 1))
    }


def render_acl(template: str, counts: Mapping[str, int] | None = None) -> str:
    """The ACL Mosquitto reads: each ``user <role>`` block of ``template`` repeated for every account.

    The packaged ``acl`` is written per role (that is what docs/mqtt.md's table states); a role with
    several accounts gets one identical block per account. ``pattern`` lines and comments are kept.
    """
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in template.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "user":
            blocks.append((words[1], []))
        else:
            blocks[-1][1].append(line)
    counts = DEFAULT_ACCOUNTS if counts is None else counts
    out: list[str] = list(blocks[0][1])
    for role, lines in blocks[1:]:
        # The comment lines after a block's rules introduce the next block: they stay after the last copy.
        rules = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        assert role is not None
        accounts = account_names(role, counts.get(role, 1))
        for name in accounts[:-1]:
            out += [f"user {name}", *rules, ""]
        out += [f"user {accounts[-1]}", *lines]
    return "\n".join(out) + "\n"


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


def password_file_matches(text: str, users: Mapping[str, str]) -> bool:
    """True if the password file ``text`` holds exactly ``users``, each with its password.

    Checks Mosquitto 2.0's sha512-pbkdf2 lines (``user:$7$iterations$salt$hash``, what
    ``mosquitto_passwd -U`` writes); any other format counts as different. An installer uses this to
    keep a file whose salted hashes would change on every rewrite.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            user, _, entry = line.partition(":")
            found[user] = entry
    if set(found) != set(users):
        return False
    for user, password in users.items():
        parts = found[user].split("$")
        if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
            return False
        try:
            salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
        except ValueError:
            return False
        actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
        if not hmac.compare_digest(actual, expected):
            return False
    return True
