"""A pair of linked pseudo-terminals (a null-modem cable in software) made by socat.

The RTU server opens one end, the client the other. ``os.openpty`` is not enough: its master side has
no path, and pymodbus/pyserial open serial ports by path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 5.0


class SerialPair:
    """Two linked ptys: ``server_path`` for the simulator, ``client_path`` (``/dev/pts/N``) for clients."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.server_path = ""
        self.client_path = ""
        self._stderr = ""

    async def start(self) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("RTU buses need socat to make a pseudo-terminal pair (apt install socat)")
        self._dir = Path(tempfile.mkdtemp(prefix=f"bcc-{self.name}-"))
        server_link, client_link = self._dir / "server", self._dir / "client"
        self._proc = await asyncio.create_subprocess_exec(
            socat,
            f"pty,raw,echo=0,link={server_link}",
            f"pty,raw,echo=0,link={client_link}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (server_link.exists() and client_link.exists()):
            if self._proc.returncode is not None or time.monotonic() > deadline:
                await self.stop()
                err = self._stderr
                raise RuntimeError(f"socat did not create the pty pair for bus {self.name}: {err.strip()}")
            await asyncio.sleep(0.01)
        self.server_path = await asyncio.to_thread(os.path.realpath, server_link)
        self.client_path = await asyncio.to_thread(os.path.realpath, client_link)

    async def stop(self) -> None:
        """Stop socat (the ptys disappear with it) and remove the link directory. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.terminate()
            try:
                _, err = await asyncio.wait_for(proc.communicate(), timeout=2)
            except TimeoutError:
                proc.kill()
                _, err = await proc.communicate()
            self._stderr = err.decode(errors="replace").strip() if err else ""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
