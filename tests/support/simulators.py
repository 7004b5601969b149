"""pytest plugin: the demo room's simulators on free loopback ports, and helpers to talk to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
