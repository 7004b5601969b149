"""Start ``bcc demo`` as a user would and read its start-up text (the demo and the packaging tests)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mosquitto import ROLES

READY = "Press Ctrl-C to stop."


async def start_demo(
    args: Sequence[str],
    *,
    cwd: Path,
    command: Sequence[str] = (sys.executable, "-m", "bcc"),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60,
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """The running demo and every line it printed up to and including READY (fails if it exits first)."""
    proc = await asyncio.create_subprocess_exec(
        *command, "--log-format", "json", "demo", *args,
        cwd=cwd, env=dict(env if env is not None else os.environ),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(timeout_s):
        while not lines or lines[-1] != READY:
            raw = await proc.stdout.readline()
            assert raw, "demo exited before it was ready:\n" + "\n".join(lines)
            lines.append(raw.decode().strip())
    return proc, lines


def after(lines: Sequence[str], label: str) -> str:
    """The text after ``label:`` on the first line starting with it."""
    return next(ln for ln in lines if ln.startswith(label + ":")).split(":", 1)[1].strip()


def mqtt_passwords(lines: Sequence[str]) -> dict[str, str]:
    """The role -> password block printed under ``MQTT users:``."""
    start = next(i for i, ln in enumerate(lines) if ln.startswith("MQTT users:")) + 1
    pairs = [ln.split() for ln in lines[start : start + len(ROLES)]]
    return {role: password for role, password in pairs}
