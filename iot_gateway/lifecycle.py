"""Bounded MQTT connections for the gateway and the recorder.

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
