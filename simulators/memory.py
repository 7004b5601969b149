"""A device's Modbus memory: the pymodbus ``SimDevice`` built from a profile, and direct access to it.

Layout rules (the same for every profile):

* each table spans address 0 up to the end of its last point; gaps between points read as 0 (real
  meters such as the SDM630 answer reserved registers with 0) and addresses past the span answer
  exception 2;
* the profile's ``unreadable`` ranges and tables without any point answer exception 2: that check is
  done per request by the fault-aware handler (``simulators.handler``), because pymodbus only keeps
  coil flags per 16-bit word;
* holding registers of non-writable points are read-only (a write answers exception 2).

pymodbus deep-copies a ``SimDevice`` into a runtime when the server is built; ``Memory`` wraps that
runtime's register lists so the simulator can read and change served values synchronously (all access
happens on the server's event loop, so no lock is needed).
"""

from __future__ import annotations

from typing import Any

from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from devices.models import DeviceProfile, Table

# SimDevice's tuple form lists the tables in this order; the runtime names them by letter.
TABLE_ORDER = (Table.COIL, Table.DISCRETE_INPUT, Table.HOLDING_REGISTER, Table.INPUT_REGISTER)
_BLOCK_ID = {
    Table.COIL: "c",
    Table.DISCRETE_INPUT: "d",
    Table.HOLDING_REGISTER: "h",
    Table.INPUT_REGISTER: "i",
}

# Function code -> table it reads or writes.
FC_TABLE: dict[int, Table] = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING_REGISTER,
    6: Table.HOLDING_REGISTER,
    16: Table.HOLDING_REGISTER,
    22: Table.HOLDING_REGISTER,
    23: Table.HOLDING_REGISTER,
    4: Table.INPUT_REGISTER,
}
WRITE_FCS = frozenset({5, 6, 15, 16, 22, 23})


def table_span(profile: DeviceProfile, table: Table) -> int:
    """Number of addresses served in ``table`` (0 when the profile has no point there)."""
    return max((p.end for p in profile.points if p.table is table), default=0)


def _bit_block(span: int) -> list[SimData]:
    # A table without points still needs one block for SimDevice; the handler refuses access to it.
    return [SimData(address=0, values=[False] * max(span, 1), datatype=SimType.BITS)]


def _register_block(profile: DeviceProfile, table: Table, span: int) -> list[SimData]:
    if span == 0:
        return [SimData(address=0, datatype=SimType.INVALID)]
    readonly = [False] * span
    if table is Table.HOLDING_REGISTER:
        for p in profile.points:
            if p.table is table and not p.writable:
                for a in range(p.address, p.end):
                    readonly[a] = True
    blocks: list[SimData] = []
    start = 0
    for a in range(1, span + 1):
        if a == span or readonly[a] != readonly[start]:
            blocks.append(
                SimData(
                    address=start,
                    count=a - start,
                    values=0,
                    datatype=SimType.REGISTERS,
                    readonly=readonly[start],
                )
            )
            start = a
    return blocks


def build_sim_device(unit: int, profile: DeviceProfile) -> SimDevice:
    """The pymodbus device for one unit id, all values 0 (``DeviceSim`` writes the initial values)."""
    blocks: list[list[SimData]] = []
    for table in TABLE_ORDER:
        span = table_span(profile, table)
        blocks.append(_bit_block(span) if table.is_bit else _register_block(profile, table, span))
    coils, inputs, holding, input_regs = blocks
    return SimDevice(id=unit, simdata=(coils, inputs, holding, input_regs), use_bit_addressing=True)


class Memory:
    """Synchronous view of the registers and bits a pymodbus server serves for one unit id."""

    def __init__(self, runtime: Any, profile: DeviceProfile) -> None:
        # runtime is pymodbus.simulator.simruntime.SimRuntime; block = (start, size, registers, flags).
        self._regs: dict[Table, list[int]] = {}
        self._span = {t: table_span(profile, t) for t in TABLE_ORDER}
        for table in TABLE_ORDER:
            start, _size, registers, _flags = runtime.block[_BLOCK_ID[table]]
            if start != 0:
                raise RuntimeError(f"unexpected {table} block start {start}")
            self._regs[table] = registers

    def span(self, table: Table) -> int:
        return self._span[table]

    def _check(self, table: Table, address: int, count: int) -> None:
        if count < 1 or address < 0 or address + count > self._span[table]:
            raise IndexError(
                f"{table} {address}..{address + count - 1} is outside 0..{self._span[table] - 1}"
            )

    def get_bits(self, table: Table, address: int, count: int = 1) -> list[bool]:
        self._check(table, address, count)
        regs = self._regs[table]
        return [bool((regs[a // 16] >> (a % 16)) & 1) for a in range(address, address + count)]

    def set_bits(self, table: Table, address: int, values: list[bool]) -> None:
        self._check(table, address, len(values))
        regs = self._regs[table]
        for a, value in enumerate(values, start=address):
            mask = 1 << (a % 16)
            regs[a // 16] = regs[a // 16] | mask if value else regs[a // 16] & ~mask

    def get_registers(self, table: Table, address: int, count: int = 1) -> list[int]:
        self._check(table, address, count)
        return list(self._regs[table][address : address + count])

    def set_registers(self, table: Table, address: int, values: list[int]) -> None:
        self._check(table, address, len(values))
        if any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError(f"register values must be 0..65535: {values}")
        self._regs[table][address : address + len(values)] = values
