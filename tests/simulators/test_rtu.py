"""RTU buses: a real pseudo-terminal pair, the simulator on one end and a serial client on the other."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException

from devices.loader import load_profiles, site_from_dict
from simulators import SiteSimulator, start_site

RTU_SITE = {
    "site": "rtu_line",
    "buses": [{"name": "line1", "type": "rtu", "port": "/dev/ttyUSB0", "baudrate": 19200, "timeout_ms": 500}],
    "devices": [
        {"id": "lights", "name": "Lights", "profile": "relay8", "bus": "line1", "unit": 1},
        {"id": "env", "name": "Env", "profile": "envsensor", "bus": "line1", "unit": 2},
    ],
}


@pytest.fixture
async def rtu_sim() -> AsyncIterator[SiteSimulator]:
    profiles = load_profiles()
    loaded = site_from_dict(RTU_SITE, {k: profiles[k] for k in ("relay8", "envsensor")})
    sim = await start_site(loaded, physics=False)
    try:
        yield sim
    finally:
        await sim.stop()


async def test_serial_client_reads_and_writes_relays_through_the_pty(rtu_sim: SiteSimulator) -> None:
    ep = rtu_sim.endpoints["line1"]
    assert ep["type"] == "rtu" and ep["port"].startswith("/dev/pts/")
    bus = rtu_sim.site_for_clients().site.bus("line1")
    assert bus.type == "rtu" and bus.port == ep["port"]
    lights = rtu_sim.device("lights")
    await lights.set_point("relay_3", True)
    client = AsyncModbusSerialClient(ep["port"], baudrate=19200, timeout=0.5, retries=0)
    try:
        assert await client.connect()
        rr = await client.read_coils(0, count=8, device_id=1)
        assert not rr.isError() and rr.bits[:8] == [False, False, True] + [False] * 5
        assert not (await client.write_coil(7, True, device_id=1)).isError()
        assert lights.get_point("relay_8") is True
        rr = await client.read_input_registers(1, count=1, device_id=2)
        assert rr.registers == [245]  # 24.5 °C x10
        # a silent device on a serial line: the client times out, the line stays usable
        lights.set_fault("no_answer")
        with pytest.raises(ModbusException):
            await client.read_coils(0, count=8, device_id=1)
        assert not (await client.read_input_registers(0, count=3, device_id=2)).isError()
    finally:
        client.close()
