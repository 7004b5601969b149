"""``python -m simulators`` prints its endpoints as one JSON line and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from pymodbus.client import AsyncModbusTcpClient

from tests.support.paths import ROOT


async def http_get(url: str, path: str) -> object:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


async def test_cli_prints_endpoints_and_exits_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        "--site",
        "devices/sites/bcc_room.yaml",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        info = json.loads(line)
        assert set(info["buses"]) == {"room_rs485", "wall_lan"}
        ep = info["buses"]["room_rs485"]
        assert ep["type"] == "tcp" and ep["port"] > 0
        client = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=1, retries=0)
        assert await client.connect()
        rr = await client.read_holding_registers(16384, count=1, device_id=2)
        client.close()
        assert rr.registers == [2]
        devices = await http_get(info["control"], "/devices")
        assert isinstance(devices, list) and len(devices) == 6
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=10)
        assert proc.returncode == 0, err.decode()
        assert out == b""  # exactly one line
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
