"""Pydantic models for device profiles: a device's register map as validated, frozen data.

A profile is one YAML file in ``devices/profiles/``. The gateway, the simulators and the dashboard
generator all read profiles through these models, so a register map is written once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bcc_common.ident import Ident

# Modbus protocol limits for one read request (Modbus Application Protocol V1.1b3, 6.1-6.4).
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable_table(self) -> bool:
        return self in (Table.COIL, Table.HOLDING_REGISTER)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def register_count(self) -> int:
        return REGISTER_COUNT[self]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)


REGISTER_COUNT: dict[DataType, int] = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}

Order = Literal["big", "little"]


class Label(BaseModel):
    """A human label in Bahasa Indonesia (``id``) and English (``en``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: Annotated[str, Field(min_length=1)]
    en: Annotated[str, Field(min_length=1)]


class Point(BaseModel):
    """One value a device exposes: a coil, a discrete input, or a number/enum in registers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: Ident
    label: Label
    table: Table
    address: Annotated[int, Field(ge=0, le=65535)]
    type: DataType = DataType.BOOL
    # Registers only: order of bytes inside a register and of registers inside a value.
    byte_order: Order = "big"
    word_order: Order = "big"
    # A bool taken from one bit of a 16-bit register (bit fields).
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    # Enumerations: raw integer -> symbolic name used on MQTT (e.g. 3 -> "split_4").
    enum: dict[int, Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]] | None = None
    writable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    precision: Annotated[int, Field(ge=0, le=6)] | None = None
    # Publish a change only when it exceeds this many engineering units (numbers only).
    deadband: Annotated[float, Field(ge=0)] = 0.0
    # Name of the poll group (see DeviceProfile.poll_groups) that reads this point.
    group: str = "default"
    # Home Assistant hints (used by discovery): e.g. temperature/measurement.
    device_class: str | None = None
    state_class: Literal["measurement", "total", "total_increasing"] | None = None

    @property
    def register_count(self) -> int:
        """Number of 16-bit registers (or bits, for bit tables) this point occupies."""
        return 1 if self.table.is_bit else self.type.register_count

    @property
    def end(self) -> int:
        """First address after this point."""
        return self.address + self.register_count

    @property
    def is_bool(self) -> bool:
        return self.type is DataType.BOOL or self.bit is not None

    @property
    def is_numeric(self) -> bool:
        return not self.is_bool and self.enum is None

    def problems(self) -> list[str]:
        """Everything wrong with this point on its own (cross-point checks live on the profile)."""
        out: list[str] = []
        if self.table.is_bit and self.type is not DataType.BOOL:
            out.append(f"table {self.table} holds single bits; type must be bool, not {self.type}")
        if not self.table.is_bit and self.type is DataType.BOOL and self.bit is None:
            out.append("a bool in a register table needs 'bit' (which bit of the register)")
        if self.bit is not None and self.type not in (DataType.BOOL, DataType.UINT16):
            out.append("'bit' applies to a single 16-bit register (type bool or uint16)")
        if self.bit is not None and self.table.is_bit:
            out.append("'bit' is for register tables, not coils or discrete inputs")
        if self.writable and not self.table.writable_table:
            out.append(f"writable point in read-only table {self.table}")
        if self.writable and self.bit is not None:
            out.append("writing single bits of a register is not supported (read-modify-write is unsafe)")
        if self.is_numeric and not self.unit:
            out.append("a number needs a unit (use '1' for dimensionless counts)")
        if self.enum is not None:
            if self.type not in (DataType.UINT16, DataType.INT16):
                out.append("enumerations must be int16 or uint16")
            if len(set(self.enum.values())) != len(self.enum):
                out.append("enumeration names must be unique")
        if (self.is_bool or self.enum is not None) and (self.scale != 1.0 or self.offset != 0.0):
            out.append("scale/offset apply to numbers only")
        if self.scale == 0:
            out.append("scale must not be 0")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            out.append(f"minimum {self.minimum} is above maximum {self.maximum}")
        if self.end > 65536:
            out.append(f"point runs past the last address 65535 (ends at {self.end - 1})")
        return out


class AddressRange(BaseModel):
    """Inclusive address range in one table that must never be read (the device faults on it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    table: Table
    start: Annotated[int, Field(ge=0, le=65535)]
    end: Annotated[int, Field(ge=0, le=65535)]

    def contains(self, table: Table, address: int) -> bool:
        return table is self.table and self.start <= address <= self.end


class PollGroup(BaseModel):
    """Default poll interval of a group of points; a site may override it per device."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    interval_s: Annotated[float, Field(gt=0, le=86400)] = 1.0


class DisplayPoints(BaseModel):
    """One display of a video wall: the writable power coil and its read-only feedback."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    power: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
    feedback: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class ConsoleHint(BaseModel):
    """What the operator console draws for a device of this model when the site has no ``console:`` list
    for its role: circuits (switchable points), a wall (displays and layout), a sensor or a meter."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Literal["circuits", "wall", "sensor", "meter"]
    points: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")], ...] = ()
    layout: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")] | None = None
    displays: tuple[DisplayPoints, ...] = ()


class DeviceProfile(BaseModel):
    """A device model: manufacturer data plus its register map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Ident
    manufacturer: str
    label: Label
    # Where the register map comes from (a datasheet or manual), or why it is invented.
    source: Annotated[str, Field(min_length=1)]
    poll_groups: dict[str, PollGroup] = Field(default_factory=lambda: {"default": PollGroup()})
    unreadable: tuple[AddressRange, ...] = ()
    points: Annotated[tuple[Point, ...], Field(min_length=1)]
    console: ConsoleHint | None = None

    @field_validator("points")
    @classmethod
    def _unique_keys(cls, points: tuple[Point, ...]) -> tuple[Point, ...]:
        seen: set[str] = set()
        dupes = [p.key for p in points if p.key in seen or seen.add(p.key)]  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(f"duplicate point keys: {', '.join(sorted(set(dupes)))}")
        return points

    @model_validator(mode="after")
    def _check_map(self) -> DeviceProfile:
        problems: list[str] = []
        for point in self.points:
            problems += [f"point {point.key}: {msg}" for msg in point.problems()]
            if point.group not in self.poll_groups:
                problems.append(f"point {point.key}: unknown poll group {point.group!r}")
            for bad in self.unreadable:
                if any(bad.contains(point.table, a) for a in range(point.address, point.end)):
                    problems.append(f"point {point.key}: lies in unreadable range {bad.start}-{bad.end}")
        problems += _overlaps(self.points)
        if self.console is not None:
            keys = {p.key for p in self.points}
            hint = self.console
            named = [*hint.points, *([hint.layout] if hint.layout else [])]
            named += [k for d in hint.displays for k in (d.power, d.feedback)]
            problems += [f"console: unknown point {k!r}" for k in named if k not in keys]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def point(self, key: str) -> Point:
        for p in self.points:
            if p.key == key:
                return p
        raise KeyError(key)

    def is_unreadable(self, table: Table, address: int) -> bool:
        return any(r.contains(table, address) for r in self.unreadable)


def _overlaps(points: tuple[Point, ...]) -> list[str]:
    """Points sharing an address in the same table (bit fields may share a register)."""
    out: list[str] = []
    by_table: dict[Table, list[Point]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    for table, pts in by_table.items():
        pts.sort(key=lambda p: (p.address, p.key))
        for i, a in enumerate(pts):
            for b in pts[i + 1 :]:
                if b.address >= a.end:
                    break
                same_bits = a.bit is not None and b.bit is not None and a.address == b.address
                if same_bits and a.bit != b.bit:
                    continue
                out.append(f"points {a.key} and {b.key} overlap in {table} at address {b.address}")
    return out
