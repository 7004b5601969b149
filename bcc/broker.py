"""Run the project's own Mosquitto configuration: secrets, password file, runtime config, process.

Used by `bcc broker passwd|config`, by `make demo` and by the tests (tests/support/broker.py), so the
broker in tests enforces the same ACL and limits as production. `EmbeddedBroker` (amqtt) is the
fallback for the demo on machines without the mosquitto binary. The module is about 440 lines because
it holds secrets, config rendering, both brokers and the CLI; each section stands alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import secrets
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bcc_common.ident import IDENT_RE
from bcc_common.net import free_port
from bcc_common.process import stop_process

__all__ = [
    "DEFAULT_ACL",
    "PRODUCTION_CONF",
    "ROLES",
    "BrokerError",
    "BrokerStartError",
    "EmbeddedBroker",
    "MissingSecretsError",
    "MosquittoProcess",
    "TlsFiles",
    "add_arguments",
    "find_mosquitto",
    "free_port",
    "generate_demo_secrets",
    "read_role_secrets",
    "render_config",
    "run",
    "write_password_file",
]

MOSQUITTO_DIR = Path(__file__).resolve().parent.parent / "mosquitto"
PRODUCTION_CONF = MOSQUITTO_DIR / "mosquitto.conf"
DEFAULT_ACL = MOSQUITTO_DIR / "acl"
# Usernames are role names; the ACL (mosquitto/acl) grants each one its topics.
ROLES: tuple[str, ...] = ("gateway", "recorder", "portal", "operator", "readonly", "homeassistant")
MIN_PASSWORD_LEN = 12
_ROLE_RE = IDENT_RE
# Settings that name files or the OS user: replaced when rendering a runtime config.
_PATH_KEYS = frozenset({"password_file", "acl_file", "persistence_location", "log_dest", "user", "pid_file"})
_REQUIRED = {"allow_anonymous": "false", "per_listener_settings": "false"}


class BrokerError(Exception):
    """Base class of broker set-up errors."""


class MissingSecretsError(BrokerError):
    """Some roles have no password (or a too-short one); ``problems`` names every one."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("MQTT secrets: " + "; ".join(self.problems))


class BrokerStartError(BrokerError):
    """Mosquitto exited or did not accept a connection in time; the message ends with its log."""


# ---- secrets and password file ---------------------------------------------------------------------
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
    bad = [u for u, p in users.items() if not _ROLE_RE.match(u) or not p or "\n" in p or "\r" in p]
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


# ---- runtime configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """A TLS listener for render_config (PEM files)."""

    port: int
    cafile: Path
    certfile: Path
    keyfile: Path


def render_config(
    dest_dir: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    acl_path: Path = DEFAULT_ACL,
    password_path: Path,
    persistence_dir: Path | None = None,
    tls: TlsFiles | None = None,
    template: Path = PRODUCTION_CONF,
) -> Path:
    """Write ``dest_dir/mosquitto.conf``: the production global settings with local paths and listeners.

    Every line above the template's first ``listener`` is kept except file paths and ``user``; the
    production listeners are replaced by one on ``host:port`` (plus ``tls``). Logs go to stderr.
    """
    globals_: list[str] = []
    seen: dict[str, str] = {}
    for raw in template.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "listener":
            break
        seen[key] = value.strip()
        if key not in _PATH_KEYS:
            globals_.append(line)
    wrong = {k: v for k, v in _REQUIRED.items() if seen.get(k) != v}
    if wrong:
        raise BrokerError(f"{template} must set {wrong} above its listeners")
    persistence_dir = persistence_dir or dest_dir / "data"
    persistence_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Rendered by bcc.broker.render_config from {template}; do not edit.",
        *globals_,
        f"password_file {password_path.resolve()}",
        f"acl_file {acl_path.resolve()}",
        f"persistence_location {persistence_dir.resolve()}/",
        "log_dest stderr",
        # Only effective when started as root: stay that user so the 0600 files stay readable.
        f"user {getpass.getuser()}",
        f"listener {port} {host}",
    ]
    if tls is not None:
        lines += [f"listener {tls.port} {host}", f"cafile {tls.cafile.resolve()}"]
        lines += [f"certfile {tls.certfile.resolve()}", f"keyfile {tls.keyfile.resolve()}"]
    dest_dir.mkdir(parents=True, exist_ok=True)
    conf = dest_dir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


# ---- processes ---------------------------------------------------------------------------------------
def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def _mqtt_str(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


async def mqtt_login(host: str, port: int, username: str, password: str, timeout_s: float = 1.0) -> int:
    """Send an MQTT 3.1.1 CONNECT and return the CONNACK return code (0 = accepted)."""
    body = b"\x00\x04MQTT\x04\xc2\x00\x0a" + _mqtt_str("bcc-ready-probe")
    body += _mqtt_str(username) + _mqtt_str(password)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        writer.write(b"\x10" + bytes([len(body)]) + body)  # len(body) < 128: one length byte
        connack = await asyncio.wait_for(reader.readexactly(4), timeout_s)
        writer.write(b"\xe0\x00")  # DISCONNECT
        return connack[3]
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class MosquittoProcess:
    """A Mosquitto subprocess running the project's config on a loopback port, with one user per role."""

    def __init__(
        self,
        workdir: Path,
        *,
        credentials: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        acl_path: Path = DEFAULT_ACL,
        tls: TlsFiles | None = None,
        binary: str | None = None,
        ready_timeout_s: float = 5.0,
        template: Path = PRODUCTION_CONF,
    ) -> None:
        self.workdir = workdir
        self.credentials: dict[str, str] = dict(credentials or generate_demo_secrets())
        self.host = host
        self.port = port
        self.acl_path = acl_path
        self.tls = tls
        self.binary = binary or find_mosquitto()
        self.ready_timeout_s = ready_timeout_s
        # The config whose global settings the broker runs (tests add log types to a copy).
        self.template = template
        self.log_path = workdir / "mosquitto.log"
        self.password_path = workdir / "passwd"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def password(self, role: str) -> str:
        return self.credentials[role]

    async def start(self) -> None:
        """Write password file and config, start Mosquitto and wait until a role can log in."""
        if self.binary is None:
            raise BrokerStartError("mosquitto binary not found (Debian package: mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_password_file(self.password_path, self.credentials)
        if self.port != 0:
            await self._spawn()
            return
        for attempt in range(5):  # another process may take the free port before Mosquitto binds it
            self.port = free_port(self.host)
            try:
                await self._spawn()
                return
            except BrokerStartError as err:
                if attempt == 4 or "in use" not in str(err):
                    raise

    async def _spawn(self) -> None:
        assert self.binary is not None
        conf = render_config(
            self.workdir,
            port=self.port,
            host=self.host,
            acl_path=self.acl_path,
            password_path=self.password_path,
            tls=self.tls,
            template=self.template,
        )
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "-c", str(conf), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        role, password = next(iter(self.credentials.items()))
        deadline = asyncio.get_running_loop().time() + self.ready_timeout_s
        while True:
            if self._proc.returncode is not None:
                break
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                if await mqtt_login(self.host, self.port, role, password) == 0:
                    return
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                break
            await asyncio.sleep(0.005)  # retry interval of the readiness poll, not a wait for readiness
        self._proc = None
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise BrokerStartError(f"mosquitto on {self.host}:{self.port} did not become ready:\n{tail}")

    async def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence database), SIGKILL after 5 s."""
        proc, self._proc = self._proc, None
        await stop_process(proc)

    async def restart(self) -> None:
        """Stop and start again on the same port with the same persistence directory."""
        await self.stop()
        await self._spawn()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class EmbeddedBroker:
    """amqtt broker (MQTT 3.1.1 only, ~4x slower) with the same users and ACL, for the demo fallback."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        credentials: Mapping[str, str] | None = None,
        acl_path: Path = DEFAULT_ACL,
    ) -> None:
        self.host, self.port = host, port or free_port(host)
        self.credentials: dict[str, str] = dict(credentials or generate_demo_secrets())
        self.acl_path = acl_path
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _acls(self) -> dict[str, dict[str, list[str]]]:
        """Translate the Mosquitto acl_file (user/topic lines) into amqtt's per-user topic lists.

        amqtt 0.12.1 checks a SUBSCRIBE filter against ``acl`` once (``bcc/#`` passes ``bcc/+``), with
        no per-message read check as Mosquitto has: publish rights match Mosquitto, read rights are
        looser. Good enough for a loopback demo, not for production.
        """
        kinds = {"read": ("acl",), "write": ("publish_acl",), "readwrite": ("acl", "publish_acl")}
        acls: dict[str, dict[str, list[str]]] = {"publish_acl": {}, "acl": {}}
        user = ""
        for line in self.acl_path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "user":
                user = words[1]
            elif len(words) == 3 and words[0] == "topic" and user:
                for kind in kinds.get(words[1], ()):
                    acls[kind].setdefault(user, []).append(words[2])
        return acls

    def _write_passwd(self, workdir: Path) -> Path:
        """amqtt reads argon2 hashes (pwdlib), not Mosquitto's PBKDF2 ones."""
        from pwdlib.hashers.argon2 import Argon2Hasher

        workdir.mkdir(parents=True, exist_ok=True)
        passwd = workdir / "passwd.argon2"
        hasher = Argon2Hasher()
        passwd.write_text("".join(f"{u}:{hasher.hash(p)}\n" for u, p in self.credentials.items()))
        passwd.chmod(0o600)
        return passwd

    async def start(self, workdir: Path) -> None:
        """Start listening on host:port; users and ACL as for Mosquitto."""
        from amqtt.broker import Broker

        passwd = self._write_passwd(workdir)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": self._acls(),
            },
        }
        with warnings.catch_warnings():
            # amqtt 0.12.1 says to use 'subscribe-acl' instead of 'acl', but its plugin Config class
            # only accepts 'acl'.
            warnings.filterwarnings(
                "ignore", message="The 'acl' option is deprecated", category=DeprecationWarning
            )
            self._broker = Broker(config)
            await self._broker.start()

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()


# ---- CLI: bcc broker passwd|config -----------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``passwd`` and ``config`` sub-commands to the ``bcc broker`` parser."""
    sub = parser.add_subparsers(dest="broker_command", required=True)
    pw = sub.add_parser("passwd", help="write the Mosquitto password file from role secrets")
    pw.add_argument("--out", type=Path, required=True, help="password file to write (mode 0600)")
    pw.add_argument("--secrets-dir", type=Path, help="directory holding mqtt_<role> files")
    cf = sub.add_parser("config", help="render a runtime mosquitto.conf on a loopback port")
    cf.add_argument("--out", type=Path, required=True, help="directory for mosquitto.conf and data/")
    cf.add_argument("--port", type=int, required=True)
    cf.add_argument("--host", default="127.0.0.1")
    cf.add_argument("--password-file", type=Path, help="default: <out>/passwd")
    cf.add_argument("--acl", type=Path, default=DEFAULT_ACL)


def run(args: argparse.Namespace) -> int:
    """Run ``bcc broker <command>``; 2 when secrets are missing."""
    if args.broker_command == "passwd":
        try:
            users = read_role_secrets(ROLES, secrets_dir=args.secrets_dir)
            write_password_file(args.out, users)
        except MissingSecretsError as err:
            print("error: " + "\n  ".join(("missing MQTT secrets:", *err.problems)), file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({len(users)} users)")
        return 0
    conf = render_config(
        args.out,
        port=args.port,
        host=args.host,
        acl_path=args.acl,
        password_path=args.password_file or args.out / "passwd",
    )
    print(conf)
    return 0
