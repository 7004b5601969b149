"""A small fault-injecting HTTP/1.1 proxy in front of a real server (reliability test C3).

Each request is decided by ``decide(method, path)`` (default: forward it) and recorded with its time:

- ``"pass"``: forwarded, the server's answer returned;
- ``"500"``: answered ``500`` without reaching the server (InfluxDB overloaded);
- ``"500_after"``: forwarded (InfluxDB stored the points), then ``500`` returned instead of the answer;
- ``"hang"``: never answered and never forwarded: the client's timeout fires;
- ``"hang_after"``: forwarded (stored), then never answered: a timeout after a successful write, the
  case where a retry must not duplicate rows.

Only what the recorder sends is supported: requests with ``Content-Length`` (no chunked bodies),
keep-alive connections. A hanging connection is held open until the client gives up and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bcc_common.net import free_port

FAULTS = ("pass", "500", "500_after", "hang", "hang_after")


@dataclass
class FaultProxy:
    upstream: str
    decide: Callable[[str, str], str] = lambda _method, _path: "pass"
    host: str = "127.0.0.1"
    port: int = 0
    log: list[tuple[float, str, str, str]] = field(default_factory=list)  # (monotonic, method, path, fault)
    _server: asyncio.Server | None = None
    _http: httpx.AsyncClient | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def counts(self, path_prefix: str = "/write") -> Counter[str]:
        return Counter(f for _, _, p, f in self.log if p.startswith(path_prefix))

    async def __aenter__(self) -> FaultProxy:
        self.port = self.port or free_port(self.host)
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None and self._http is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()
        await self._http.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers = {}
                for text in header_lines:
                    if ":" in text:
                        name, value = text.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                fault = self.decide(method, target)
                self.log.append((time.monotonic(), method, target, fault))
                if fault in ("pass", "500_after", "hang_after"):
                    assert self._http is not None
                    forward = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
                    response = await self._http.request(method, target, content=body, headers=forward)
                if fault in ("hang", "hang_after"):
                    await reader.read()  # until the client times out and closes the connection
                    return
                if fault == "pass":
                    status, reason, payload = response.status_code, response.reason_phrase, response.content
                    ctype = response.headers.get("content-type", "application/json")
                    extra = "".join(
                        f"{k}: {v}\r\n"
                        for k, v in response.headers.items()
                        if k.lower().startswith("x-influxdb")
                    )
                else:
                    status, reason, ctype, extra = 500, "Internal Server Error", "application/json", ""
                    payload = b'{"error":"injected fault: overloaded"}'
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode("latin-1")
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
