"""Run Debian's ``influxd`` (1.6.7) on a free loopback port with throwaway directories.

Used by the test fixture (tests/support/influx.py), ``bcc bench recorder`` and the demo. The config is
minimal (it is ready in about 0.05 s): no usage reporting, no self-monitoring store, HTTP bound to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from bcc_common.children import die_with_parent
from bcc_common.net import free_port
from bcc_common.process import stop_process


class InfluxdStartError(Exception):
    """influxd exited or did not answer /ping in time; the message ends with its log."""


def find_influxd() -> str | None:
    return shutil.which("influxd") or next(
        (p for p in ("/usr/bin/influxd", "/usr/sbin/influxd") if os.access(p, os.X_OK)), None
    )


class InfluxdProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_size: int = 25_000_000,
        auth_enabled: bool = False,
        binary: str | None = None,
        ready_timeout_s: float = 10.0,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self.max_body_size = max_body_size
        self.auth_enabled = auth_enabled  # HTTP authentication (the first user created must be an admin)
        self.binary = binary or find_influxd()
        self.ready_timeout_s = ready_timeout_s
        self.log_path = workdir / "influxd.log"
        self.rpc_port = 0  # the backup/restore service (``bind-address``), chosen at each start
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_address(self) -> str:
        """``host:port`` of the backup/restore service (``influxd backup -host``)."""
        return f"{self.host}:{self.rpc_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _config(self) -> Path:
        self.rpc_port = free_port(self.host)
        d = self.workdir
        text = f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"
[meta]
  dir = "{d / "meta"}"
[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  max-body-size = {self.max_body_size}
  auth-enabled = {"true" if self.auth_enabled else "false"}
[continuous_queries]
  log-enabled = false
"""
        conf = d / "influxdb.conf"
        conf.write_text(text, encoding="utf-8")
        return conf

    async def start(self) -> None:
        if self.binary is None:
            raise InfluxdStartError("influxd not found (Debian package: influxdb)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        fixed = self.port != 0
        for attempt in range(5):
            if not fixed:
                self.port = free_port(self.host)
            try:
                await self._spawn()
                return
            except InfluxdStartError:
                if fixed or attempt == 4:
                    raise

    async def _spawn(self) -> None:
        assert self.binary is not None
        conf = self._config()
        with self.log_path.open("ab") as log:
            # die_with_parent: a killed demo or test must not leave influxd running (bcc_common.children).
            self._proc = await asyncio.create_subprocess_exec(
                self.binary,
                *("-config", str(conf)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent(),
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout_s
        async with httpx.AsyncClient(timeout=0.5) as http:
            while self._proc.returncode is None and loop.time() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/ping")).status_code == 204:
                        return
                await asyncio.sleep(0.01)  # poll interval of the readiness check
        await self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise InfluxdStartError(f"influxd on {self.url} did not become ready:\n{tail}")

    async def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s."""
        proc, self._proc = self._proc, None
        await stop_process(proc)

    async def restart(self) -> None:
        """Start again on the same port with the same data."""
        await self.stop()
        await self._spawn()
