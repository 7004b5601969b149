"""A lean Modbus TCP client (MBAP framing) for the hub's hot path: the function codes the gateway uses.

Why not pymodbus here: at 1,500 devices polled every second, pymodbus's per-request machinery (its
transaction manager, PDU objects, ``asyncio.wait_for`` with a task and a timer per request, string
formatting for its debug log) was a quarter of the gateway's CPU (py-spy, docs/performance.md). This
client sends one frame and waits on one future with one timer: the hub already serialises the
requests of a bus (one transaction on the line at a time), so there is no transaction manager to keep.

Same surface as the pymodbus client the hub calls (method names, ``device_id``, the responses'
``registers``, ``bits``, ``isError()`` and ``exception_code``, and pymodbus's exception types), so
``BusHub`` keeps one code path; RTU lines and RTU framing over TCP stay on pymodbus.

A response is matched by transaction id and function code; a late answer to a request that timed
out carries an old transaction id and is dropped.

An answer is checked before it is decoded: one to our transaction id with another function code, a
read answer whose byte count is not the one the request asks for (2 per register, one per 8 bits) or
whose data is shorter than its byte count raises ``MalformedAnswer`` (a ``ModbusIOException``, so the
hub counts it as a failed request of that device, never a crash of the gateway). A header that is not
Modbus TCP (protocol id not 0, a length outside 2..254) means the stream cannot be framed any more: the
connection is closed (the request in flight fails with ``MalformedAnswer``) and the hub reconnects.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence

from pymodbus.exceptions import ConnectionException, ModbusIOException

_MBAP = struct.Struct(">HHHB")  # transaction id, protocol 0, length (unit + PDU), unit
_ADDR_COUNT = struct.Struct(">HH")
MAX_FRAME = 260  # Modbus TCP ADU limit


class MalformedAnswer(ModbusIOException):
    """The device answered, but not with a valid answer to the request."""


class Response:
    __slots__ = ("bits", "exception_code", "registers")

    def __init__(
        self, registers: list[int] | None = None, bits: list[bool] | None = None, exception_code: int = 0
    ) -> None:
        self.registers = registers if registers is not None else []
        self.bits = bits if bits is not None else []
        self.exception_code = exception_code

    def isError(self) -> bool:
        return self.exception_code != 0


def _bits(data: bytes) -> list[bool]:
    return [bool(byte >> i & 1) for byte in data for i in range(8)]


class _Connection(asyncio.Protocol):
    """One TCP connection: a new one per connect, so a late ``connection_lost`` of an abandoned
    attempt (a connect that timed out) can never touch the connection in use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        # The request in flight: (transaction id, function code, future). The hub sends one at a time.
        self.waiting: tuple[int, int, asyncio.Future[bytes]] | None = None

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.closed and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(ConnectionException(f"{self.name}: connection lost"))

    def close(self, err: Exception | None = None) -> None:
        """Close the connection; the request in flight fails with ``err`` (a ConnectionException
        when None)."""
        self.closed = True
        self.fail(err or ConnectionException(f"{self.name}: closed"))
        if self.transport is not None:
            self.transport.close()

    def fail(self, err: Exception) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting[2].done():
            waiting[2].set_exception(err)

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        while len(buf) >= 8:
            tid, protocol, length, _unit = _MBAP.unpack_from(buf)
            if protocol != 0 or not 2 <= length <= MAX_FRAME - 6:
                # Not Modbus TCP: nothing more in this stream can be framed. Closed, the hub reconnects.
                buf.clear()
                why = f"not a Modbus TCP header (protocol {protocol}, length {length}); connection closed"
                self.close(MalformedAnswer(f"{self.name}: {why}"))
                return
            if len(buf) < 6 + length:
                return
            pdu = bytes(buf[7 : 6 + length])
            del buf[: 6 + length]
            # Matched by transaction id and function code: some devices answer with another unit id.
            waiting = self.waiting
            if waiting is None or waiting[0] != tid:
                continue  # a late answer to a request that timed out
            if waiting[1] != pdu[0] & 0x7F:
                err = f"{self.name}: answer with function code {pdu[0]} to a request with {waiting[1]}"
                self.fail(MalformedAnswer(err))
                continue
            self.waiting = None
            if not waiting[2].done():
                waiting[2].set_result(pdu)


class LeanModbusTcpClient:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.name = f"{host}:{port}"
        self._conn: _Connection | None = None
        self._tid = 0

    # --- connection ------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.usable

    async def connect(self) -> bool:
        if self.connected:
            return True
        self.close()
        loop = asyncio.get_running_loop()
        conn = _Connection(self.name)
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(lambda: conn, self.host, self.port)
        except (OSError, TimeoutError):
            conn.close()
            return False
        self._conn = conn
        return True

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # --- frames ----------------------------------------------------------------------------
    async def _request(self, unit: int, function: int, body: bytes) -> bytes:
        conn = self._conn
        if conn is None or not conn.usable:
            raise ConnectionException(f"{self.name}: not connected")
        assert conn.transport is not None
        self._tid = tid = (self._tid + 1) & 0xFFFF
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        conn.waiting = (tid, function, future)
        conn.transport.write(_MBAP.pack(tid, 0, len(body) + 2, unit) + bytes((function,)) + body)
        timer = loop.call_later(self.timeout, self._expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            if conn.waiting is not None and conn.waiting[2] is future:
                conn.waiting = None

    def _expire(self, future: asyncio.Future[bytes]) -> None:
        if not future.done():
            err = f"{self.name}: no answer within {self.timeout} s"
            future.set_exception(ModbusIOException(err))

    async def _read(self, unit: int, function: int, address: int, count: int, size: int) -> Response | bytes:
        """The data bytes of a read answer, which must be ``size`` bytes (the byte count the request
        asks for), or the exception answer."""
        pdu = await self._request(unit, function, _ADDR_COUNT.pack(address, count))
        if pdu[0] & 0x80:
            return Response(exception_code=pdu[1] if len(pdu) > 1 else 4)
        if len(pdu) < 2 or pdu[1] != size or len(pdu) < 2 + size:
            got = f"byte count {pdu[1]} and {len(pdu) - 2} data bytes" if len(pdu) > 1 else "no byte count"
            err = f"{self.name}: function {function} answer for {count} values has {got}, expected {size}"
            raise MalformedAnswer(err)
        return pdu[2 : 2 + size]

    # --- the pymodbus methods the hub calls ----------------------------------------------------
    async def read_holding_registers(self, address: int, *, count: int = 1, device_id: int = 1) -> Response:
        return self._registers(await self._read(device_id, 3, address, count, 2 * count))

    async def read_input_registers(self, address: int, *, count: int = 1, device_id: int = 1) -> Response:
        return self._registers(await self._read(device_id, 4, address, count, 2 * count))

    async def read_coils(self, address: int, *, count: int = 1, device_id: int = 1) -> Response:
        return self._bit_response(await self._read(device_id, 1, address, count, (count + 7) // 8))

    async def read_discrete_inputs(self, address: int, *, count: int = 1, device_id: int = 1) -> Response:
        return self._bit_response(await self._read(device_id, 2, address, count, (count + 7) // 8))

    async def write_coil(self, address: int, value: bool, *, device_id: int = 1) -> Response:
        body = _ADDR_COUNT.pack(address, 0xFF00 if value else 0)
        return self._written(await self._request(device_id, 5, body))

    async def write_register(self, address: int, value: int, *, device_id: int = 1) -> Response:
        return self._written(await self._request(device_id, 6, _ADDR_COUNT.pack(address, value)))

    async def write_registers(self, address: int, values: Sequence[int], *, device_id: int = 1) -> Response:
        body = struct.pack(f">HHB{len(values)}H", address, len(values), 2 * len(values), *values)
        return self._written(await self._request(device_id, 16, body))

    @staticmethod
    def _registers(data: Response | bytes) -> Response:
        if isinstance(data, Response):
            return data
        return Response(registers=list(struct.unpack(f">{len(data) // 2}H", data)))

    @staticmethod
    def _bit_response(data: Response | bytes) -> Response:
        if isinstance(data, Response):
            return data
        return Response(bits=_bits(data))

    @staticmethod
    def _written(pdu: bytes) -> Response:
        if pdu[0] & 0x80:
            return Response(exception_code=pdu[1] if len(pdu) > 1 else 4)
        return Response()
