"""pytest plugin: the demo room's simulators on free loopback ports, and helpers to talk to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pymodbus.client import AsyncModbusTcpClient

from devices.loader import DEMO_SITE, load_site
from devices.models import Table
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


async def read_coil(sim: SiteSimulator, device: str, key: str) -> bool:
    """The coil as the device reports it over Modbus, not the simulator's internals."""
    loaded = sim.site_for_clients()
    instance = next(d for d in loaded.site.devices if d.id == device)
    point = next(p for p in loaded.profile_of(instance).points if p.key == key)
    assert point.table is Table.COIL
    async with tcp_client(sim, instance.bus) as client:
        rr = await client.read_coils(point.address, count=1, device_id=instance.unit)
        assert not rr.isError(), rr
        return bool(rr.bits[0])
