"""An independent Modbus master (mbpoll, libmodbus) agrees with the profiles and the codec."""

from __future__ import annotations

import asyncio
import re

from devices.codec import encode_registers
from simulators import SiteSimulator


async def mbpoll(port: int, *args: str) -> dict[int, str]:
    """Run one mbpoll poll (0-based references) and return {reference: printed value}."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll",
        "-m",
        "tcp",
        "-p",
        str(port),
        "-0",
        "-1",
        "-o",
        "1",
        *args,
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0, err.decode()
    return {int(m[1]): m[2] for m in re.finditer(r"^\[(\d+)\]:\s+(\S+)", out.decode(), re.MULTILINE)}


async def test_mbpoll_reads_sdm630_voltage_floats(room_sim: SiteSimulator) -> None:
    meter = room_sim.device("meter_main")
    await meter.set_point("voltage_l1", 231.5)
    await meter.set_point("voltage_l3", 228.25)
    port = room_sim.endpoints["room_rs485"]["port"]
    # SDM630: float32, high word first (mbpoll -B), 30001.. = PDU address 0..
    values = await mbpoll(port, "-a", "5", "-t", "3:float", "-B", "-r", "0", "-c", "3")
    assert values == {0: "231.5", 2: "230", 4: "228.25"}
    point = meter.profile.point("voltage_l1")
    assert meter.get_registers("input_register", point.address, 2) == encode_registers(point, 231.5)


async def test_mbpoll_reads_relay_coils(room_sim: SiteSimulator) -> None:
    lights = room_sim.device("lights_b")
    await lights.set_point("relay_2", True)
    await lights.set_point("relay_8", True)
    port = room_sim.endpoints["room_rs485"]["port"]
    values = await mbpoll(port, "-a", "2", "-t", "0", "-r", "0", "-c", "8")
    assert values == {n: ("1" if n in (1, 7) else "0") for n in range(8)}
