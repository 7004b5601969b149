"""A pair of linked pseudo-terminals (a null-modem cable in software) made by socat.

The RTU server opens one end, the client the other. ``os.openpty`` is not enough: its master side has
no path, and pymodbus/pyserial open serial ports by path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 5.0


class SerialPair:
    """Two linked ptys: ``server_path`` for the simulator, ``client_path`` (``/dev/pts/N``) for clients."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.server_path = ""
        self.client_path = ""

    async def start(self) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("RTU buses need socat to make a pseudo-terminal pair (apt install socat)")
        self._dir = Path(tempfile.mkdtemp(prefix=f"bcc-{self.name}-"))
        server_link, client_link = self._dir / "server", self._dir / "client"
        self._proc = subprocess.Popen(
            [socat, "-d0", f"pty,raw,echo=0,link={server_link}", f"pty,raw,echo=0,link={client_link}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (server_link.exists() and client_link.exists()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise RuntimeError(f"socat did not create the pty pair for bus {self.name}: {err.strip()}")
            await asyncio.sleep(0.01)
        self.server_path = os.path.realpath(server_link)
        self.client_path = os.path.realpath(client_link)

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
