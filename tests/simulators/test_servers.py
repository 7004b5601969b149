"""The bus servers serve every device's register map as its profile describes it."""

from __future__ import annotations

import socket

import pytest
from pymodbus.client import AsyncModbusTcpClient

from devices.codec import decode_registers
from devices.models import Point, Table
from simulators import SiteSimulator
from tests.support.simulators import tcp_client

READ = {
    Table.COIL: "read_coils",
    Table.DISCRETE_INPUT: "read_discrete_inputs",
    Table.HOLDING_REGISTER: "read_holding_registers",
    Table.INPUT_REGISTER: "read_input_registers",
}


async def read_point(client: AsyncModbusTcpClient, unit: int, point: Point) -> object:
    rr = await getattr(client, READ[point.table])(point.address, count=point.register_count, device_id=unit)
    assert not rr.isError(), f"{point.key}: {rr}"
    if point.table.is_bit:
        return rr.bits[0]
    return decode_registers(point, rr.registers)


async def test_tcp_ports_are_the_bound_ones(room_sim: SiteSimulator) -> None:
    site = room_sim.site_for_clients().site
    for bus in site.buses:
        ep = room_sim.endpoints[bus.name]
        assert ep["type"] == "tcp" and bus.type == "tcp"
        assert ep["port"] > 0
        assert (bus.host, bus.port) == (ep["host"], ep["port"])
        with socket.create_connection((ep["host"], ep["port"]), timeout=1):
            pass


async def test_every_point_reads_as_served_with_initial_values(room_sim: SiteSimulator) -> None:
    for bus in room_sim.endpoints:
        async with tcp_client(room_sim, bus) as client:
            for dev in (d for d in room_sim.devices.values() if d.bus == bus):
                for point in dev.profile.points:
                    assert await read_point(client, dev.unit, point) == dev.get_point(point.key), point.key
    lights, wall = room_sim.device("lights_a"), room_sim.device("wall")
    env, meter = room_sim.device("env_front"), room_sim.device("meter_main")
    assert not any(lights.get_point(f"relay_{n}") for n in range(1, 9))
    assert not any(wall.get_point(f"display_{n}_power") for n in range(1, 8))
    assert wall.get_point("layout") == "wide"
    assert (env.get_point("temperature"), env.get_point("humidity")) == (24.5, 60.0)
    assert (env.get_point("co2"), env.get_point("illuminance")) == (450, 0)
    assert meter.get_point("voltage_l1") == 230.0 and meter.get_point("frequency") == 50.0
    assert (
        lights.get_point("device_address") == 1
        and room_sim.device("lights_b").get_point("device_address") == 2
    )


async def test_set_point_is_seen_by_clients_in_read_only_tables(room_sim: SiteSimulator) -> None:
    env, meter = room_sim.device("env_back"), room_sim.device("meter_main")
    await env.set_point("temperature", -3.7)
    meter.set_point("voltage_l2", 231.4)  # the setters work without await too
    async with tcp_client(room_sim, "room_rs485") as client:
        assert await read_point(client, env.unit, env.profile.point("temperature")) == -3.7
        value = await read_point(client, meter.unit, meter.profile.point("voltage_l2"))
        assert value == pytest.approx(231.4, abs=1e-4)
    await meter.set_registers("input_register", 70, [0x4248, 0])  # 50.0 as float32
    assert meter.get_point("frequency") == 50.0
    assert meter.get_registers(Table.INPUT_REGISTER, 70, 2) == [0x4248, 0]


@pytest.mark.parametrize(
    ("device", "call", "address", "count"),
    [
        ("env_front", "read_input_registers", 3, 1),  # envsensor: reserved register 3
        ("env_front", "read_input_registers", 0, 5),  # a block read across it fails as a whole
        ("wall", "read_holding_registers", 1, 9),  # videowall7: reserved 1-9
        ("wall", "read_holding_registers", 0, 11),
        ("lights_a", "read_discrete_inputs", 0, 1),  # relay8 has no discrete inputs
        ("meter_main", "read_input_registers", 74, 2),  # past the end of the map
    ],
)
async def test_unreadable_addresses_answer_exception_2(
    room_sim: SiteSimulator, device: str, call: str, address: int, count: int
) -> None:
    dev = room_sim.device(device)
    async with tcp_client(room_sim, dev.bus) as client:
        rr = await getattr(client, call)(address, count=count, device_id=dev.unit)
        assert rr.isError() and rr.exception_code == 2
        # the device keeps answering readable addresses
        first = dev.profile.points[0]
        assert await read_point(client, dev.unit, first) == dev.get_point(first.key)


async def test_writes_are_logged_and_applied(room_sim: SiteSimulator) -> None:
    lights, wall = room_sim.device("lights_a"), room_sim.device("wall")
    async with tcp_client(room_sim, "room_rs485") as client:
        assert not (await client.write_coil(2, True, device_id=1)).isError()
        assert not (await client.write_coils(4, [True, False, True], device_id=1)).isError()
        # firmware_version is read-only: the write is refused but still logged
        rr = await client.write_register(32768, 7, device_id=1)
        assert rr.isError() and rr.exception_code == 2
    assert lights.get_point("relay_3") is True and lights.get_point("relay_7") is True
    assert lights.get_point("relay_6") is False and lights.get_point("firmware_version") == 0x0100
    assert [(w.function_code, w.address, w.values) for w in lights.writes] == [
        (5, 2, (True,)),
        (15, 4, (True, False, True)),
        (6, 32768, (7,)),
    ]
    async with tcp_client(room_sim, "wall_lan") as client:
        assert not (await client.write_register(0, 3, device_id=1)).isError()
        assert not (await client.write_registers(10, [2, 3], device_id=1)).isError()
        assert not (await client.write_coil(4, True, device_id=1)).isError()
    assert wall.get_point("layout") == "split_4"
    assert (wall.get_point("display_1_source"), wall.get_point("display_2_source")) == (
        "displayport",
        "stream",
    )
    # the controller reports each display's power state on its discrete inputs
    assert wall.get_point("display_5_on") is True and wall.get_point("display_4_on") is False
    assert [w.function_code for w in wall.writes] == [6, 16, 5]


async def test_unknown_unit_on_tcp_gateway_answers_exception_11(room_sim: SiteSimulator) -> None:
    async with tcp_client(room_sim, "room_rs485") as client:
        rr = await client.read_coils(0, count=1, device_id=42)
        assert rr.isError() and rr.exception_code == 11
