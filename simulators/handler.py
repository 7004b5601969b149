"""pymodbus servers whose request handler logs writes and applies per-device faults.

pymodbus' ``SimDevice(action=...)`` hook can change registers or return an exception code, but it
cannot withhold an answer, close the connection or delay one unit id while the others answer, and it
sees only 16-bit words for coil requests. So the servers here replace the per-connection request
handler (``ServerRequestHandler``, pymodbus 3.16.1) and keep the datastore itself (``SimCore``) as is.
Each request is served in its own task, so a "slow" device delays only its own answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimDevice
from pymodbus.transaction import TransactionManager

from devices.models import Table
from simulators.device import DeviceSim
from simulators.memory import FC_TABLE, WRITE_FCS

log = logging.getLogger(__name__)


def write_request(pdu: Any) -> tuple[int, Sequence[int | bool]]:
    """(address, values) of a write request PDU, as logged in ``DeviceSim.writes``."""
    fc = pdu.function_code
    if fc in (5, 15):
        return pdu.address, list(pdu.bits)
    if fc == 22:
        return pdu.address, [pdu.and_mask, pdu.or_mask]
    if fc == 23:
        return pdu.write_address, list(pdu.write_registers)
    return pdu.address, list(pdu.registers)


class BusMixin:
    """What the fault-aware handler needs from its server: the devices on the bus, by unit id."""

    bcc_devices: dict[int, DeviceSim]
    bcc_serial: bool


class FaultyRequestHandler(ServerRequestHandler):
    """Serves one client connection (TCP) or the serial line (RTU)."""

    def __init__(self, owner: Any, *args: Any) -> None:
        super().__init__(owner, *args)  # type: ignore[no-untyped-call]
        self.bus: BusMixin = owner
        self.pending: set[asyncio.Task[None]] = set()

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        # Same as ServerRequestHandler.callback_data, but the PDU is handed to its own task instead of
        # being re-read from self.last_pdu later (a second frame could overwrite it meanwhile).
        try:
            used_len: int = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:
            response = ExceptionResponse(
                0 if exc.fcode is None else exc.fcode,
                exception_code=ExcCodes.ILLEGAL_FUNCTION,
                device_id=exc.dev_id,
                transaction=exc.transaction_id,
            )
            self.server_send(response, addr)  # type: ignore[no-untyped-call]
            return len(data)
        if self.last_pdu:
            task = asyncio.get_running_loop().create_task(self.serve(self.last_pdu, self.last_addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        return used_len

    def callback_disconnected(self, exc: Exception | None) -> None:
        for task in list(self.pending):
            task.cancel()
        super().callback_disconnected(exc)

    def reply(self, request: Any, response: Any, addr: tuple[Any, ...] | None) -> None:
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        if self.transport:
            self.server_send(response, addr)  # type: ignore[no-untyped-call]

    async def serve(self, pdu: Any, addr: tuple[Any, ...] | None) -> None:
        fc: int = pdu.function_code
        dev = self.bus.bcc_devices.get(pdu.dev_id)
        if dev is None:
            # Nobody answers for an absent unit on a serial line; a TCP gateway says so (exception 11).
            if not self.bus.bcc_serial:
                self.reply(pdu, ExceptionResponse(fc, ExcCodes.GATEWAY_NO_RESPONSE), addr)
            return
        write_address, write_values = write_request(pdu) if fc in WRITE_FCS else (0, [])
        if fc in WRITE_FCS:
            dev.record_write(fc, write_address, write_values)
        elif fc in FC_TABLE:
            dev.record_read(fc, pdu.address, pdu.count)
        fault = dev.fault
        if fault.kind == "no_answer" or (fault.kind == "drop_connection" and self.bus.bcc_serial):
            return
        if fault.kind == "drop_connection":
            self.close()
            return
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.kind == "exception":
            self.reply(pdu, ExceptionResponse(fc, fault.code), addr)
            return
        code = self._refused(dev, pdu)
        if code is not None:
            self.reply(pdu, ExceptionResponse(fc, code), addr)
            return
        snapshot = None
        table = FC_TABLE.get(fc)
        if fc in WRITE_FCS and table is not None and dev.fault.kind == "stuck":
            try:
                snapshot = dev.get_registers(table, write_address, len(write_values) if fc != 22 else 1)
            except IndexError:
                snapshot = None  # outside the map: pymodbus answers exception 2 and nothing changes
        try:
            response = await pdu.datastore_update(self.server.context, pdu.dev_id)
        except Exception:  # same net as pymodbus: a datastore bug becomes exception 4
            log.exception("simulator datastore failed on %s", type(pdu).__name__)
            response = ExceptionResponse(fc, ExcCodes.DEVICE_FAILURE)
        if snapshot is not None and table is not None:
            dev.set_registers(table, write_address, snapshot)  # stuck: acknowledged, not applied
        elif fc in WRITE_FCS and table is Table.COIL:
            dev.apply_feedback()
        self.reply(pdu, response, addr)

    @staticmethod
    def _refused(dev: DeviceSim, pdu: Any) -> int | None:
        fc = pdu.function_code
        if fc == 23:
            return dev.refuse(3, pdu.read_address, pdu.read_count) or dev.refuse(
                16, pdu.write_address, len(pdu.write_registers)
            )
        return dev.refuse(fc, getattr(pdu, "address", 0), getattr(pdu, "count", 1))


class BusTcpServer(ModbusTcpServer, BusMixin):
    """Modbus TCP (or RTU-over-TCP) server for one bus."""

    def __init__(self, devices: list[SimDevice], host: str, port: int, framer: FramerType) -> None:
        super().__init__(devices, address=(host, port), framer=framer)
        self.bcc_devices = {}
        self.bcc_serial = False

    def callback_new_connection(self) -> FaultyRequestHandler:
        return FaultyRequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)

    @property
    def bound_port(self) -> int:
        sockets = cast(asyncio.Server, self.transport).sockets
        return int(sockets[0].getsockname()[1])


class BusSerialServer(ModbusSerialServer, BusMixin):
    """Modbus RTU server on one end of a serial line (a pseudo-terminal in tests and demos)."""

    def __init__(
        self, devices: list[SimDevice], port: str, baudrate: int, parity: str, stopbits: int, bytesize: int
    ) -> None:
        super().__init__(
            devices,
            framer=FramerType.RTU,
            port=port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            reconnect_delay=0.2,
        )
        self.bcc_devices = {}
        self.bcc_serial = True

    def callback_new_connection(self) -> FaultyRequestHandler:
        return FaultyRequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)
