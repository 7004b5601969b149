"""Starting and stopping things reliably: shared by the gateway, the recorder and the process owners.

Two library behaviours make a plain ``task.cancel()`` / ``async with client`` unreliable here:
Python 3.11's ``asyncio.wait_for`` (used inside pymodbus and aiomqtt) can swallow a cancellation when
the awaited future completes at the same moment, and aiomqtt 2.5's ``__aexit__`` waits for the
broker to close the connection without a timeout. Both once kept a service alive after SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt
import structlog

log = structlog.get_logger(__name__)

DISCONNECT_TIMEOUT_S = 2.0
# Longer than DISCONNECT_TIMEOUT_S, so a repeated cancel never cuts a graceful disconnect short.
CANCEL_RETRY_S = 3.0


async def cancel_and_wait(*tasks: asyncio.Task[None]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again if a cancellation got lost."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_RETRY_S)


@contextlib.asynccontextmanager
async def mqtt_connected(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """``async with client`` whose exit (the MQTT DISCONNECT) is bounded by DISCONNECT_TIMEOUT_S."""
    await client.__aenter__()
    try:
        yield client
    finally:
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await client.__aexit__(None, None, None)
        except aiomqtt.MqttError:
            pass
        except TimeoutError:
            log.warning("mqtt_disconnect_timeout", timeout_s=DISCONNECT_TIMEOUT_S)
            pending = getattr(client, "_disconnected", None)  # aiomqtt's own wait: release it
            if isinstance(pending, asyncio.Future) and not pending.done():
                pending.set_result(None)


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
