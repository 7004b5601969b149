"""``python -m bcc ...`` as a child process of a test, with its log kept in a file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.paths import ROOT


@contextlib.asynccontextmanager
async def bcc(args: list[str], env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bcc ARGS`` (the command line of a unit); its log is printed when the test fails."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bcc", *args, cwd=ROOT, env={**os.environ, **env},
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            print((await asyncio.to_thread(log.read_text, errors="replace"))[-4000:])  # shown on failure
