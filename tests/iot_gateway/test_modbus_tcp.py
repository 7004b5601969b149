"""The gateway's lean Modbus TCP client (iot_gateway.modbus_tcp) against the simulated video-wall
controller (a pymodbus server): every function code the hub uses, exception answers, a device that
answers too late (the late answer must not be taken for the next request's) or never, a dropped
connection and the reconnect after it. Expected values come from the simulator's memory. Against a
raw server (tests/support/raw_modbus.py): malformed answers are refused as I/O errors, and a frame
that is not Modbus TCP closes the connection."""

from __future__ import annotations

import random
import time

import pytest
from pymodbus.exceptions import ConnectionException, ModbusIOException

from iot_gateway.modbus_tcp import LeanModbusTcpClient
from simulators.site import SiteSimulator
from tests.support.raw_modbus import RawModbusServer, frame, registers_answer

TIMEOUT_S = 0.3


async def connected(sim: SiteSimulator) -> LeanModbusTcpClient:
    ep = sim.endpoints["wall_lan"]
    client = LeanModbusTcpClient(ep["host"], ep["port"], TIMEOUT_S)
    assert await client.connect()
    assert client.connected
    return client


async def test_reads_and_writes_match_the_device(room_sim: SiteSimulator) -> None:
    wall = room_sim.device("wall")
    unit = wall.unit
    client = await connected(room_sim)
    try:
        rng = random.Random(7)
        for _ in range(5):
            coils = [rng.random() < 0.5 for _ in range(7)]
            wall.set_registers("coil", 0, coils)
            layout = rng.randrange(0, 65536)
            wall.set_registers("holding_register", 0, [layout])
            r = await client.read_coils(0, count=7, device_id=unit)
            assert not r.isError() and r.bits[:7] == coils
            r = await client.read_discrete_inputs(0, count=7, device_id=unit)
            assert r.bits[:7] == wall.get_registers("discrete_input", 0, 7)
            r = await client.read_holding_registers(0, count=1, device_id=unit)
            assert r.registers == [layout]
            r = await client.read_input_registers(0, count=1, device_id=unit)
            assert r.registers == wall.get_registers("input_register", 0, 1)
        assert not (await client.write_coil(3, True, device_id=unit)).isError()
        assert wall.get_registers("coil", 3) == [True]
        assert not (await client.write_coil(3, False, device_id=unit)).isError()
        assert wall.get_registers("coil", 3) == [False]
        assert not (await client.write_register(0, 4242, device_id=unit)).isError()
        assert wall.get_registers("holding_register", 0) == [4242]
        assert not (await client.write_registers(10, [1, 2, 3], device_id=unit)).isError()
        assert wall.get_registers("holding_register", 10, 3) == [1, 2, 3]
        # The reserved block answers exception 2 (illegal data address), as the profile says.
        r = await client.read_holding_registers(1, count=3, device_id=unit)
        assert r.isError() and r.exception_code == 2
    finally:
        client.close()
    assert not client.connected


async def test_faults_late_answers_and_reconnect(room_sim: SiteSimulator) -> None:
    wall = room_sim.device("wall")
    unit = wall.unit
    client = await connected(room_sim)
    try:
        wall.set_fault("exception", code=6)
        r = await client.read_coils(0, count=7, device_id=unit)
        assert r.isError() and r.exception_code == 6
        wall.set_fault("no_answer")
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=1, device_id=unit)
        # Too slow: the answer arrives after the timeout, while the next request waits for its own.
        wall.set_registers("holding_register", 0, [111])
        wall.set_fault("slow", delay_ms=int(TIMEOUT_S * 1000 * 1.5))
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=1, device_id=unit)
        wall.set_fault("none")
        wall.set_registers("holding_register", 0, [222])
        for _ in range(3):  # the late [111] arrives during these and is dropped
            r = await client.read_holding_registers(0, count=1, device_id=unit)
            assert r.registers == [222]
        wall.set_fault("drop_connection")
        with pytest.raises(ConnectionException):
            await client.read_holding_registers(0, count=1, device_id=unit)
        assert not client.connected
        with pytest.raises(ConnectionException):
            await client.read_holding_registers(0, count=1, device_id=unit)
        wall.set_fault("none")
        assert await client.connect()
        r = await client.read_holding_registers(0, count=1, device_id=unit)
        assert r.registers == [222]
    finally:
        client.close()


async def test_malformed_answers_are_io_errors_and_a_foreign_header_closes_the_connection() -> None:
    """Each malformed answer fails its request at once (well before the timeout) with a Modbus I/O
    error, which the hub counts as the device's failed request; the next good answer is read."""
    server = RawModbusServer(registers_answer)
    bad = {
        # two registers asked for: a byte count of 3 (odd), and of 4 with only 2 data bytes behind it
        "odd byte count": lambda tid, unit, pdu: frame(tid, unit, bytes((3, 3, 0, 1, 0))),
        "byte count beyond the data": lambda tid, unit, pdu: frame(tid, unit, bytes((3, 4, 0, 1))),
        "no byte count": lambda tid, unit, pdu: frame(tid, unit, bytes((3,))),
        "another function code": lambda tid, unit, pdu: frame(tid, unit, bytes((4, 4, 0, 1, 0, 2))),
    }
    async with server:
        client = LeanModbusTcpClient(server.host, server.port, TIMEOUT_S)
        try:
            assert await client.connect()
            assert (await client.read_holding_registers(0, count=2)).registers == [100, 101]
            for name, answer in bad.items():
                server.answer = answer
                started = time.monotonic()
                with pytest.raises(ModbusIOException, match=r"byte count|function code"):
                    await client.read_holding_registers(0, count=2)
                assert time.monotonic() - started < TIMEOUT_S / 2, name
                server.answer = registers_answer
                assert (await client.read_holding_registers(0, count=2)).registers == [100, 101], name
            # 16 coils need 2 bytes: a 1-byte answer (8 coils) is short
            server.answer = lambda tid, unit, pdu: frame(tid, unit, bytes((1, 1, 0xFF)))
            with pytest.raises(ModbusIOException, match="byte count"):
                await client.read_coils(0, count=16)
            server.answer = lambda tid, unit, pdu: frame(tid, unit, bytes((2, 1, 0x05)))  # 9 inputs: 2 bytes
            with pytest.raises(ModbusIOException, match="byte count"):
                await client.read_discrete_inputs(0, count=9)
            server.answer = lambda tid, unit, pdu: frame(tid, unit, bytes((2, 1, 0x05)))
            assert (await client.read_discrete_inputs(0, count=8)).bits[:3] == [True, False, True]
            assert client.connected and server.connections == 1

            # Not Modbus TCP (protocol id 1, then an absurd length): the stream cannot be framed any
            # more; the request fails at once, the connection is closed, a reconnect reads again.
            for n, answer in enumerate(
                [
                    lambda tid, unit, pdu: frame(tid, unit, bytes((3, 4, 0, 1, 0, 2)), protocol=1),
                    lambda tid, unit, pdu: frame(tid, unit, b"HTTP/1.1 400 Bad Request", length=0x4854),
                ],
                start=1,
            ):
                server.answer = answer
                started = time.monotonic()
                with pytest.raises(ModbusIOException, match="not a Modbus TCP header"):
                    await client.read_holding_registers(0, count=2)
                assert time.monotonic() - started < TIMEOUT_S / 2
                assert not client.connected
                server.answer = registers_answer
                assert await client.connect()
                assert (await client.read_holding_registers(0, count=2)).registers == [100, 101]
                assert server.connections == 1 + n
        finally:
            client.close()
