"""One hub per Modbus bus: it owns the Modbus client, serialises requests and reconnects.

Modbus TCP uses the gateway's lean client (iot_gateway.modbus_tcp); RTU lines and RTU frames over TCP
use pymodbus.

Only the hub talks on its line, one transaction at a time (two tasks on one RS-485 line corrupt
frames: thingsboard-gateway's most reported serial bug). Commands take the bus ahead of waiting polls
through a priority lock. RTU lines also get the 3.5-character silence between frames.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import random
import time
from collections.abc import Sequence
from typing import Any

import structlog
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from devices.models import Table
from devices.site import RtuBus, TcpBus
from iot_gateway.errors import BadAnswer, BusDisconnected, DeviceException, DeviceTimeout
from iot_gateway.modbus_tcp import LeanModbusTcpClient, MalformedAnswer

log = structlog.get_logger(__name__)

PRIORITY_COMMAND = 0
PRIORITY_POLL = 10


class PriorityLock:
    """A mutex whose waiters are served by priority (lowest first), then in arrival order."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def acquire(self, priority: int) -> None:
        if not self._locked and not self._waiters:
            self._locked = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed the lock as we got cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # ownership moves to this waiter; stays locked
                return
        self._locked = False


class BusHub:
    """Owner of one bus. All reads and writes of all devices on the bus go through it."""

    def __init__(self, bus: TcpBus | RtuBus) -> None:
        self.bus = bus
        self.name = bus.name
        self._lock = PriorityLock()
        self._timeout_s = bus.timeout_ms / 1000
        self._frame_gap_s = bus.frame_gap_s if isinstance(bus, RtuBus) else 0.0
        self._last_io = 0.0
        self._client: Any = None
        self._next_connect = 0.0
        self._connect_failures = 0
        self._connected_logged: bool | None = None
        # Last frames on a serial line: (monotonic time, sent?) - lets tests and SIGUSR1 dumps check
        # the inter-frame silence and that only one transaction is on the line at a time.
        self.frame_log: collections.deque[tuple[float, bool]] = collections.deque(maxlen=256)

    def _trace(self, sending: bool, packet: bytes) -> bytes:
        self.frame_log.append((time.monotonic(), sending))
        return packet

    def _make_client(self) -> Any:
        # retries=0: the hub and the device breakers decide about retrying, not pymodbus;
        # reconnect_delay=0: pymodbus must not reconnect behind our back (we reconnect with backoff).
        b = self.bus
        if isinstance(b, TcpBus) and b.framer == "socket":
            return LeanModbusTcpClient(b.host, b.port, self._timeout_s)  # the hot path (modbus_tcp.py)
        if isinstance(b, TcpBus):
            framer = FramerType.RTU if b.framer == "rtu" else FramerType.SOCKET
            return AsyncModbusTcpClient(
                b.host, port=b.port, framer=framer, timeout=self._timeout_s, retries=0, reconnect_delay=0
            )
        return AsyncModbusSerialClient(
            b.port,
            trace_packet=self._trace,
            baudrate=b.baudrate,
            parity=b.parity,
            stopbits=b.stopbits,
            bytesize=b.bytesize,
            timeout=self._timeout_s,
            retries=0,
            reconnect_delay=0,
        )

    @property
    def queue_depth(self) -> int:
        return self._lock.waiting

    async def _ensure_connected(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_connect:
            raise BusDisconnected(f"bus {self.name}: not connected (next attempt pending)")
        if self._client is None:
            self._client = self._make_client()
        try:
            async with asyncio.timeout(max(self._timeout_s, 1.0)):
                ok = await self._client.connect()
        except (TimeoutError, OSError, ModbusException) as err:
            ok = False
            log.debug("bus_connect_error", bus=self.name, error=str(err))
        if not ok:
            self._connect_failures += 1
            delay = min(self.bus.reconnect_max_s, 0.1 * 2 ** min(self._connect_failures, 16))
            self._next_connect = loop.time() + delay * random.uniform(0.5, 1.0)
            if self._connected_logged is not False:
                log.warning("bus_disconnected", bus=self.name)
                self._connected_logged = False
            raise BusDisconnected(f"bus {self.name}: cannot connect")
        self._connect_failures = 0
        if self._connected_logged is not True:
            log.info("bus_connected", bus=self.name)
            self._connected_logged = True
        return self._client

    async def _call(self, priority: int, method: str, *args: Any, **kwargs: Any) -> Any:
        await self._lock.acquire(priority)
        try:
            client = await self._ensure_connected()
            if self._frame_gap_s:
                wait = self._last_io + self._frame_gap_s - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                response = await getattr(client, method)(*args, **kwargs)
            except MalformedAnswer as err:
                raise BadAnswer(f"bus {self.name}: unit {kwargs.get('device_id')}: {err}") from err
            except ModbusIOException as err:
                raise DeviceTimeout(
                    f"bus {self.name}: no answer from unit {kwargs.get('device_id')}"
                ) from err
            except (ConnectionException, OSError) as err:
                client.close()
                raise BusDisconnected(f"bus {self.name}: connection lost: {err}") from err
            except ModbusException as err:
                raise DeviceTimeout(f"bus {self.name}: {err}") from err
            finally:
                self._last_io = asyncio.get_running_loop().time()
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                raise DeviceException(code, f"unit {kwargs.get('device_id')} answered exception {code}")
            return response
        finally:
            self._lock.release()

    async def read(self, table: Table, address: int, count: int, unit: int, priority: int) -> list[int]:
        """Read exactly ``count`` registers or bits; bits come back as 0/1 ints. Fewer values than
        asked for (a device's short answer, through any client) raise BadAnswer."""
        if table is Table.COIL:
            r = await self._call(priority, "read_coils", address, count=count, device_id=unit)
            values = [int(b) for b in r.bits[:count]]
        elif table is Table.DISCRETE_INPUT:
            r = await self._call(priority, "read_discrete_inputs", address, count=count, device_id=unit)
            values = [int(b) for b in r.bits[:count]]
        elif table is Table.HOLDING_REGISTER:
            r = await self._call(priority, "read_holding_registers", address, count=count, device_id=unit)
            values = list(r.registers[:count])
        else:
            r = await self._call(priority, "read_input_registers", address, count=count, device_id=unit)
            values = list(r.registers[:count])
        if len(values) < count:
            raise BadAnswer(f"bus {self.name}: unit {unit} answered {len(values)} of {count} values")
        return values

    async def write_coil(self, address: int, value: bool, unit: int) -> None:
        await self._call(PRIORITY_COMMAND, "write_coil", address, value, device_id=unit)

    async def write_registers(self, address: int, values: Sequence[int], unit: int) -> None:
        if len(values) == 1:
            await self._call(PRIORITY_COMMAND, "write_register", address, values[0], device_id=unit)
        else:
            await self._call(PRIORITY_COMMAND, "write_registers", address, list(values), device_id=unit)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
