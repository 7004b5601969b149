"""Loopback JSON-over-HTTP control port for manual runs of the simulators (stdlib asyncio only).

    GET  /devices              every device: bus, unit, profile, fault, number of writes
    GET  /devices/<id>         current point values of one device
    GET  /writes/<id>          write requests the device received
    POST /fault/<id>           {"kind": "no_answer"} or {"kind": "slow", "delay_ms": 800}, ...
    POST /points/<id>          {"relay_3": true, "temperature": 27.5}: change served values
    GET  /endpoints            where the buses listen

Example: ``curl -X POST -d '{"kind":"exception","code":4}' http://127.0.0.1:PORT/fault/meter_main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from typing import Any

from devices.codec import CodecError
from simulators.site import SiteSimulator

MAX_BODY_BYTES = 65536
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    """Serves the control API for one ``SiteSimulator``; ``url`` is its address once started."""

    def __init__(self, sim: SiteSimulator) -> None:
        self.sim = sim
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if host not in LOOPBACK:
            raise ValueError("the control port has no authentication: bind it to loopback only")
        self._server = await asyncio.start_server(self._client, host, port)
        bound = self._server.sockets[0].getsockname()
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._handle(reader)
        except HttpError as err:
            status, body = err.status, {"error": str(err)}
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            status, body = 400, {"error": "bad request"}
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").split()
        if len(request_line) < 2:
            raise HttpError(400, "bad request line")
        method, path = request_line[0], request_line[1].split("?")[0].rstrip("/")
        length = 0
        while (line := (await reader.readline()).decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        raw = await reader.readexactly(length) if length else b""
        payload: Any = json.loads(raw) if raw else {}
        return 200, self.route(method, path, payload)

    def route(self, method: str, path: str, payload: Any) -> Any:
        parts = [p for p in path.split("/") if p]
        sim = self.sim
        if method == "GET" and parts == ["endpoints"]:
            return sim.endpoints
        if method == "GET" and parts == ["devices"]:
            return [
                {
                    "id": d.id,
                    "bus": d.bus,
                    "unit": d.unit,
                    "profile": d.profile.model,
                    "fault": d.fault.as_dict(),
                    "writes": len(d.writes),
                }
                for d in sim.devices.values()
            ]
        if len(parts) != 2:
            raise HttpError(404, f"no route {method} {path}")
        if parts[1] not in sim.devices:
            raise HttpError(404, f"no device {parts[1]!r}")
        dev = sim.devices[parts[1]]
        if not isinstance(payload, dict):
            raise HttpError(400, "body must be a JSON object")
        try:
            if method == "GET" and parts[0] == "devices":
                return dev.points()
            if method == "GET" and parts[0] == "writes":
                return [asdict(w) for w in dev.writes]
            if method == "POST" and parts[0] == "fault":
                opts = dict(payload)
                dev.set_fault(str(opts.pop("kind", "none")), **opts)
                return dev.fault.as_dict()
            if method == "POST" and parts[0] == "points":
                for key, value in payload.items():
                    dev.set_point(key, value)
                return dev.points()
        except (CodecError, KeyError, ValueError, TypeError) as err:
            raise HttpError(400, str(err)) from err
        raise HttpError(404, f"no route {method} {path}")
