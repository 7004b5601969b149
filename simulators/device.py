"""One simulated device: its served values by point key, its write and read logs, and its injected fault."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from devices.codec import CodecError, Value, decode_registers, encode_registers, parse_bool
from devices.models import DeviceProfile, Point, Table
from devices.site import DeviceInstance
from simulators.defaults import initial_values
from simulators.memory import FC_TABLE, WRITE_FCS, Memory

FaultKind = Literal["none", "no_answer", "exception", "drop_connection", "slow", "stuck"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ILLEGAL_ADDRESS = 2
# The read log keeps this many requests (a demo polls for hours; tests look at seconds of it).
READ_LOG_SIZE = 10_000


@dataclass(frozen=True)
class WriteRecord:
    """A write request the device received (logged before any fault is applied)."""

    function_code: int
    address: int
    values: tuple[int | bool, ...]
    time: float


@dataclass(frozen=True)
class ReadRecord:
    """A read request the device received (logged before any fault is applied).

    ``time`` is ``time.monotonic()``, the clock of asyncio's ``loop.time()``: tests measure poll
    intervals against their event loop with it.
    """

    function_code: int
    address: int
    count: int
    time: float


@dataclass(frozen=True)
class Fault:
    """What the device does wrong. ``code`` is for "exception", ``delay_ms`` for "slow"."""

    kind: FaultKind = "none"
    code: int = 4
    delay_ms: int = 0

    @classmethod
    def make(cls, kind: str, **opts: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        allowed = {"exception": {"code"}, "slow": {"delay_ms"}}.get(kind, set())
        extra = set(opts) - allowed
        if extra:
            raise ValueError(f"fault {kind!r} takes no option(s) {', '.join(sorted(extra))}")
        code = int(opts.get("code", 4))
        if not 1 <= code <= 255:
            raise ValueError(f"exception code must be 1..255, not {code}")
        delay_ms = int(opts.get("delay_ms", 1000 if kind == "slow" else 0))
        if delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        return cls(kind=kind, code=code, delay_ms=delay_ms)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "exception":
            out["code"] = self.code
        if self.kind == "slow":
            out["delay_ms"] = self.delay_ms
        return out


class Applied:
    """Returned by the setters: the change is already made, so awaiting the result is optional."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


def _table(table: Table | str) -> Table:
    return table if isinstance(table, Table) else Table(table)


class DeviceSim:
    """A device instance served by a bus server, addressed by its unit id.

    Tests use it to look at and change what the device reports (``get_point``/``set_point`` work on
    read-only tables too), to read the log of write requests, and to inject faults.
    """

    def __init__(self, instance: DeviceInstance, profile: DeviceProfile, memory: Memory) -> None:
        self.instance = instance
        self.profile = profile
        self.memory = memory
        self.writes: list[WriteRecord] = []
        self.reads: deque[ReadRecord] = deque(maxlen=READ_LOG_SIZE)  # the newest READ_LOG_SIZE
        self.fault = Fault()
        # A real wall controller reports each display's power state; tests may switch this off to
        # simulate a display that ignores its controller.
        self.feedback_enabled = True
        self._feedback = self._feedback_pairs(profile)
        for key, value in initial_values(profile.model, instance.unit).items():
            self.set_point(key, value)

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def unit(self) -> int:
        return self.instance.unit

    @property
    def bus(self) -> str:
        return self.instance.bus

    @staticmethod
    def _feedback_pairs(profile: DeviceProfile) -> list[tuple[Point, Point]]:
        """(coil ``X_power``, discrete input ``X_on``) pairs: the input reports the coil's effect."""
        coils = {p.key: p for p in profile.points if p.table is Table.COIL}
        pairs = []
        for p in profile.points:
            if p.table is Table.DISCRETE_INPUT and p.key.endswith("_on"):
                coil = coils.get(p.key.removesuffix("_on") + "_power")
                if coil is not None:
                    pairs.append((coil, p))
        return pairs

    # --- values -------------------------------------------------------------------------------
    def get_point(self, key: str) -> Value:
        """Engineering value the device currently serves for ``key`` (decoded by ``devices.codec``).
        Raises CodecError for a float register holding NaN or Inf."""
        point = self.profile.point(key)
        if point.table.is_bit:
            return self.memory.get_bits(point.table, point.address)[0]
        value = decode_registers(
            point, self.memory.get_registers(point.table, point.address, point.register_count)
        )
        if value is None:  # a test set the register to NaN/Inf: no engineering value to give
            raise CodecError(f"{key}: the device serves a non-finite float")
        return value

    def set_point(self, key: str, value: object) -> Applied:
        """Change the served value of ``key`` (any table). Raises CodecError for invalid values."""
        point = self.profile.point(key)
        if point.table.is_bit:
            self.memory.set_bits(point.table, point.address, [parse_bool(point, value)])
            if point.table is Table.COIL:
                self.apply_feedback()
        elif point.bit is not None:
            reg = self.memory.get_registers(point.table, point.address)[0]
            mask = 1 << point.bit
            reg = reg | mask if parse_bool(point, value) else reg & ~mask
            self.memory.set_registers(point.table, point.address, [reg])
        else:
            self.memory.set_registers(point.table, point.address, encode_registers(point, value))
        return Applied()

    def points(self) -> dict[str, Value]:
        return {p.key: self.get_point(p.key) for p in self.profile.points}

    def get_registers(self, table: Table | str, address: int, count: int = 1) -> list[int] | list[bool]:
        """Raw served values: bools for coils/discrete inputs, 16-bit integers for registers."""
        t = _table(table)
        if t.is_bit:
            return self.memory.get_bits(t, address, count)
        return self.memory.get_registers(t, address, count)

    def set_registers(self, table: Table | str, address: int, values: Sequence[int | bool]) -> Applied:
        t = _table(table)
        if t.is_bit:
            self.memory.set_bits(t, address, [bool(v) for v in values])
            if t is Table.COIL:
                self.apply_feedback()
        else:
            self.memory.set_registers(t, address, [int(v) for v in values])
        return Applied()

    def apply_feedback(self) -> None:
        """Make each ``X_on`` input report its ``X_power`` coil (skipped while stuck or disabled)."""
        if not self.feedback_enabled or self.fault.kind == "stuck":
            return
        for coil, feedback in self._feedback:
            state = self.memory.get_bits(Table.COIL, coil.address)
            self.memory.set_bits(Table.DISCRETE_INPUT, feedback.address, state)

    # --- faults and requests ------------------------------------------------------------------
    def set_fault(self, kind: str, **opts: Any) -> None:
        """Inject a fault: "none", "no_answer", "exception" (code=4), "drop_connection",
        "slow" (delay_ms=1000) or "stuck". Raises ValueError for unknown kinds or options."""
        self.fault = Fault.make(kind, **opts)

    def record_write(self, function_code: int, address: int, values: Sequence[int | bool]) -> None:
        self.writes.append(WriteRecord(function_code, address, tuple(values), time.time()))

    def record_read(self, function_code: int, address: int, count: int) -> None:
        self.reads.append(ReadRecord(function_code, address, count, time.monotonic()))

    def refuse(self, function_code: int, address: int, count: int) -> int | None:
        """Exception code for a request the register map refuses, before pymodbus sees it."""
        table = FC_TABLE.get(function_code)
        if table is None:
            return None
        if self.memory.span(table) == 0:
            return ILLEGAL_ADDRESS
        if function_code not in WRITE_FCS and any(
            self.profile.is_unreadable(table, a) for a in range(address, address + max(count, 1))
        ):
            return ILLEGAL_ADDRESS
        return None
