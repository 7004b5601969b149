"""The loopback HTTP control port drives the same DeviceSim methods the tests use."""

from __future__ import annotations

import asyncio
import json

import pytest

from simulators import SiteSimulator
from simulators.control import ControlServer
from tests.support.simulators import tcp_client


async def request(url: str, method: str, path: str, body: object | None = None) -> tuple[int, object]:
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode() if body is not None else b""
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


async def test_control_faults_points_and_writes(room_sim: SiteSimulator) -> None:
    control = ControlServer(room_sim)
    url = await control.start()
    try:
        status, body = await request(url, "POST", "/fault/meter_main", {"kind": "exception", "code": 6})
        assert (status, body) == (200, {"kind": "exception", "code": 6})
        async with tcp_client(room_sim, "room_rs485") as client:
            rr = await client.read_input_registers(0, count=2, device_id=5)
            assert rr.isError() and rr.exception_code == 6
            await client.write_coil(0, True, device_id=1)
        status, body = await request(url, "POST", "/points/env_front", {"temperature": 27.5})
        assert status == 200 and isinstance(body, dict) and body["temperature"] == 27.5
        status, body = await request(url, "GET", "/writes/lights_a")
        assert status == 200 and isinstance(body, list)
        assert [(w["function_code"], w["address"], w["values"]) for w in body] == [(5, 0, [True])]
        status, body = await request(url, "GET", "/devices")
        assert status == 200 and isinstance(body, list)
        assert {d["id"]: d["fault"]["kind"] for d in body}["meter_main"] == "exception"
        assert (await request(url, "POST", "/fault/meter_main", {"kind": "melted"}))[0] == 400
        assert (await request(url, "POST", "/points/env_front", {"humidity": 150}))[0] == 400
        assert (await request(url, "GET", "/devices/nobody"))[0] == 404
    finally:
        await control.close()


async def test_control_refuses_non_loopback(room_sim: SiteSimulator) -> None:
    with pytest.raises(ValueError, match="loopback"):
        await ControlServer(room_sim).start(host="0.0.0.0")
