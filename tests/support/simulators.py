"""pytest plugin: the demo room's simulators on free loopback ports, and helpers to talk to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from devices.loader import DEMO_SITE, load_site
from simulators import SiteSimulator, start_site


@pytest.fixture
async def room_sim() -> AsyncIterator[SiteSimulator]:
    """The demo site (devices/sites/bcc_room.yaml), physics off, every TCP bus on a free port."""
    sim = await start_site(load_site(DEMO_SITE), port=0, physics=False)
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def tcp_client(
    sim: SiteSimulator, bus: str, *, timeout_s: float = 1.0
) -> AsyncIterator[AsyncModbusTcpClient]:
    """A connected pymodbus client for one TCP bus of ``sim`` (no retries: faults show at once)."""
    ep = sim.endpoints[bus]
    client = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=timeout_s, retries=0)
    try:
        assert await client.connect(), f"cannot connect to bus {bus} at {ep}"
        yield client
    finally:
        client.close()


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout_s: float = 5.0, interval_s: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail with a clear message at the deadline (never a blind sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result: Any = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)
