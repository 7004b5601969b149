"""Stopping child processes and tasks reliably (services, the demo, tests and benchmarks).

Python 3.11's ``asyncio.wait_for`` (used inside pymodbus and aiomqtt) can swallow a cancellation when
the awaited future completes at the same moment; a task that lost its cancellation once kept a
service alive after SIGTERM, so cancellation is repeated until the task really ends.
"""

from __future__ import annotations

import asyncio

# Longer than the 2 s bound on an MQTT disconnect, so a repeated cancel never cuts a graceful one short.
CANCEL_RETRY_S = 3.0


async def cancel_and_wait(*tasks: asyncio.Task[None]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again if a cancellation got lost."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_RETRY_S)


async def stop_process(proc: asyncio.subprocess.Process | None, grace_s: float = 5.0) -> None:
    """SIGTERM (servers save their data), SIGKILL after ``grace_s``; no-op if already gone."""
    if proc is None or proc.returncode is not None:
        return
    proc.terminate()
    try:
        async with asyncio.timeout(grace_s):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
