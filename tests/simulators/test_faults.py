"""Faults are per unit id: one broken device on a shared bus, its neighbours keep answering."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus.exceptions import ModbusException

from simulators import SiteSimulator
from tests.support.simulators import tcp_client

TIMEOUT_S = 0.3


async def neighbour_answers(sim: SiteSimulator) -> None:
    """lights_b (unit 2) shares the room bus with the faulty lights_a (unit 1)."""
    await sim.device("lights_b").set_point("relay_8", True)
    async with tcp_client(sim, "room_rs485", timeout_s=TIMEOUT_S) as client:
        rr = await client.read_coils(0, count=8, device_id=2)
        assert not rr.isError() and rr.bits[7] is True


async def test_no_answer_times_out_and_logs_the_write(room_sim: SiteSimulator) -> None:
    room_sim.device("lights_a").set_fault("no_answer")
    async with tcp_client(room_sim, "room_rs485", timeout_s=TIMEOUT_S) as client:
        started = time.monotonic()
        with pytest.raises(ModbusException):
            await client.write_coil(0, True, device_id=1)
        assert time.monotonic() - started >= TIMEOUT_S * 0.9
    lights = room_sim.device("lights_a")
    assert [(w.function_code, w.address, w.values) for w in lights.writes] == [(5, 0, (True,))]
    assert lights.get_point("relay_1") is False
    await neighbour_answers(room_sim)


async def test_exception_fault_answers_the_code(room_sim: SiteSimulator) -> None:
    lights = room_sim.device("lights_a")
    lights.set_fault("exception")
    async with tcp_client(room_sim, "room_rs485") as client:
        rr = await client.read_coils(0, count=8, device_id=1)
        assert rr.isError() and rr.exception_code == 4
        lights.set_fault("exception", code=6)
        rr = await client.write_coil(1, True, device_id=1)
        assert rr.isError() and rr.exception_code == 6
    assert lights.get_point("relay_2") is False and len(lights.writes) == 1
    await neighbour_answers(room_sim)


async def test_drop_connection_closes_the_client_connection(room_sim: SiteSimulator) -> None:
    room_sim.device("lights_a").set_fault("drop_connection")
    ep = room_sim.endpoints["room_rs485"]
    reader, writer = await asyncio.open_connection(ep["host"], ep["port"])
    try:
        # Modbus TCP: transaction 1, protocol 0, length 6, unit 1, FC01 read 8 coils from 0
        writer.write(bytes.fromhex("000100000006010100000008"))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), timeout=1) == b""  # EOF, no answer
    finally:
        writer.close()
        await writer.wait_closed()
    async with tcp_client(room_sim, "room_rs485", timeout_s=TIMEOUT_S) as client:
        with pytest.raises(ModbusException):
            await client.read_coils(0, count=8, device_id=1)
    await neighbour_answers(room_sim)
    room_sim.device("lights_a").set_fault("none")
    async with tcp_client(room_sim, "room_rs485") as client:
        assert not (await client.read_coils(0, count=8, device_id=1)).isError()


async def test_slow_device_delays_only_its_own_answers(room_sim: SiteSimulator) -> None:
    room_sim.device("lights_a").set_fault("slow", delay_ms=400)
    async with (
        tcp_client(room_sim, "room_rs485") as slow_client,
        tcp_client(room_sim, "room_rs485") as fast_client,
    ):
        started = time.monotonic()
        slow = asyncio.ensure_future(slow_client.read_coils(0, count=8, device_id=1))
        rr = await fast_client.read_coils(0, count=8, device_id=2)
        assert not rr.isError() and time.monotonic() - started < 0.3
        assert not slow.done()
        rr = await slow
        assert not rr.isError() and time.monotonic() - started >= 0.4


async def test_stuck_relay_acknowledges_without_change(room_sim: SiteSimulator) -> None:
    lights = room_sim.device("lights_a")
    lights.set_fault("stuck")
    async with tcp_client(room_sim, "room_rs485") as client:
        rr = await client.write_coil(2, True, device_id=1)
        assert not rr.isError() and rr.bits[0] is True  # FC05 echoes the request
        assert not (await client.write_coils(0, [True] * 8, device_id=1)).isError()
        assert (await client.read_coils(0, count=8, device_id=1)).bits == [False] * 8
    assert [w.function_code for w in lights.writes] == [5, 15]
    await neighbour_answers(room_sim)


async def test_stuck_wall_keeps_registers_and_feedback(room_sim: SiteSimulator) -> None:
    wall = room_sim.device("wall")
    wall.set_fault("stuck")
    async with tcp_client(room_sim, "wall_lan") as client:
        assert not (await client.write_register(0, 4, device_id=1)).isError()
        assert not (await client.write_coil(0, True, device_id=1)).isError()
    assert wall.get_point("layout") == "wide"
    assert wall.get_point("display_1_power") is False and wall.get_point("display_1_on") is False


def test_unknown_fault_kind_and_option_are_refused(room_sim: SiteSimulator) -> None:
    lights = room_sim.device("lights_a")
    with pytest.raises(ValueError, match="unknown fault kind"):
        lights.set_fault("on_fire")
    with pytest.raises(ValueError, match="delay_ms"):
        lights.set_fault("stuck", delay_ms=5)
    assert lights.fault.kind == "none"
