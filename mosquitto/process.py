"""A Mosquitto subprocess running the project's config on a loopback port, with one user per role."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from types import TracebackType
from typing import Self

from bcc_common.children import die_with_parent
from bcc_common.net import free_port
from bcc_common.process import stop_process
from bcc_contract.accounts import DEFAULT_ACCOUNTS, account_names
from mosquitto.accounts import account_passwords, generate_demo_secrets, write_password_file
from mosquitto.config import PRODUCTION_CONF, TlsFiles, render_config
from mosquitto.errors import BrokerStartError


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def _mqtt_str(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


async def mqtt_login(
    host: str,
    port: int,
    username: str,
    password: str,
    timeout_s: float = 1.0,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Send an MQTT 3.1.1 CONNECT (over ``tls`` if given); the CONNACK return code (0 = accepted)."""
    body = b"\x00\x04MQTT\x04\xc2\x00\x0a" + _mqtt_str("bcc-ready-probe")
    body += _mqtt_str(username) + _mqtt_str(password)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=tls), timeout_s)
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
    """Mosquitto with the packaged config (mosquitto/config.py) and a password file for ``credentials``.

    ``credentials`` are role -> password; every account of a role (``accounts``, default
    DEFAULT_ACCOUNTS: portal_1 .. portal_8) logs in with its role's password.

    The process gets SIGKILL if ours dies (bcc_common.children), so a killed demo or test leaves no
    broker behind.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        credentials: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        acl_path: Path | None = None,
        tls: TlsFiles | None = None,
        binary: str | None = None,
        ready_timeout_s: float = 5.0,
        template: Traversable = PRODUCTION_CONF,
        accounts: Mapping[str, int] | None = None,
    ) -> None:
        self.workdir = workdir
        self.credentials: dict[str, str] = dict(credentials or generate_demo_secrets())
        self.accounts: dict[str, int] = dict(DEFAULT_ACCOUNTS if accounts is None else accounts)
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

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def password(self, who: str) -> str:
        """The password of a role or of one of its accounts (``portal_2`` has ``portal``'s)."""
        if who in self.credentials:
            return self.credentials[who]
        role = who.rpartition("_")[0]
        if role in self.credentials and who in account_names(role, self.accounts.get(role, 1)):
            return self.credentials[role]
        raise KeyError(who)

    def account(self, role: str, k: int = 1) -> str:
        """The ``k``-th account of ``role`` (from 1; -1 is the last): what a process of it logs in as."""
        names = account_names(role, self.accounts.get(role, 1))
        return names[k - 1] if k > 0 else names[k]

    async def start(self) -> None:
        """Write password file and config, start Mosquitto and wait until a role can log in."""
        if self.binary is None:
            raise BrokerStartError("mosquitto binary not found (Debian package: mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_password_file(self.password_path, account_passwords(self.credentials, self.accounts))
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
            accounts=self.accounts,
        )
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary,
                *("-c", str(conf)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent(),
            )
        deadline = asyncio.get_running_loop().time() + self.ready_timeout_s
        while True:
            if self._proc.returncode is not None:
                break
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                # Any CONNACK means the broker is serving. The probe is no account of ours: logging in as
                # one would take over that account's connection on a restart (use_username_as_clientid).
                await mqtt_login(self.host, self.port, "bcc_ready_probe", "not-a-password")
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
