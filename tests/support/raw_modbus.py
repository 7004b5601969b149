"""A Modbus TCP server on loopback that answers each request with the frame a test makes of it: for the
answers no device library would send (a byte count that does not match the request, data shorter than
its byte count, another function code, a header that is not Modbus TCP).

``answer(tid, unit, pdu)`` returns the whole frame to send (``frame`` builds one with an MBAP header)
or None for no answer; it may be replaced while the server runs. ``connections`` counts the accepted
connections (a client that reconnects opens a second one).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

MBAP = struct.Struct(">HHHB")  # transaction id, protocol, length (unit + PDU), unit

Answer = Callable[[int, int, bytes], bytes | None]


def frame(tid: int, unit: int, pdu: bytes, protocol: int = 0, length: int | None = None) -> bytes:
    """A Modbus TCP frame; ``protocol`` and ``length`` given only to make it wrong."""
    return MBAP.pack(tid, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


def registers_answer(tid: int, unit: int, pdu: bytes) -> bytes:
    """A correct answer to a read of holding or input registers: register i holds 100 + i."""
    count = struct.unpack_from(">H", pdu, 3)[0]
    data = b"".join(struct.pack(">H", 100 + i) for i in range(count))
    return frame(tid, unit, bytes((pdu[0], len(data))) + data)


@dataclass
class RawModbusServer:
    answer: Answer
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> RawModbusServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                tid, _protocol, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
                pdu = await reader.readexactly(length - 1)
                out = self.answer(tid, unit, pdu)
                if out is not None:
                    writer.write(out)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            self._tasks.discard(task)
            writer.close()
