"""Parse and validate commands from MQTT, before anything touches a device.

A command is a JSON object of point keys to absolute values, with an optional ``transaction`` id and
``ts`` (ISO-8601 with timezone or epoch seconds), the time it was sent, that the TTL check uses. ``ts``
is mandatory unless the site says ``gateway.require_command_ts: false``: a command without it has no
age, so one queued on a broker (a bridge during a WAN cut) would run whenever it is delivered. Anything
wrong makes the whole command ``rejected``: nothing is written for a partly valid command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from bcc_contract.commands import RESERVED_KEYS, CommandStatus
from devices.codec import CodecError, encode_registers, parse_bool
from devices.models import DeviceProfile, Point

# Clocks of command senders may run a little ahead of ours.
MAX_FUTURE_SKEW_S = 5.0
MISSING_TS = "ts missing: a command must say when it was sent (ISO-8601 with timezone or epoch seconds)"


@dataclass(frozen=True)
class Write:
    """One validated write: a coil value or the registers to store."""

    point: Point
    value: Any  # the requested engineering value, in the form state uses ("ON", "split_4", 21.5)
    coil: bool | None = None
    registers: tuple[int, ...] = ()


@dataclass(frozen=True)
class Command:
    device: str
    transaction: str | None
    writes: tuple[Write, ...]


class CommandRejected(Exception):
    """The payload is not a valid command; ``transaction`` is echoed when it could be read."""

    def __init__(
        self, message: str, transaction: str | None = None, status: CommandStatus = CommandStatus.REJECTED
    ):
        super().__init__(message)
        self.transaction = transaction
        self.status = status


def _transaction(data: dict[str, Any]) -> str | None:
    tx = data.get("transaction")
    if tx is None:
        return None
    if isinstance(tx, bool) or not isinstance(tx, str | int) or len(str(tx)) > 128:
        raise CommandRejected("transaction must be a string or integer of at most 128 characters")
    return str(tx)


def transaction_of(payload: bytes) -> str | None:
    """The ``transaction`` of a payload that will not be parsed further, or None if unreadable."""
    with contextlib.suppress(orjson.JSONDecodeError, CommandRejected):
        data = orjson.loads(payload)
        if isinstance(data, dict):
            return _transaction(data)
    return None


def _timestamp(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError("timestamp without timezone")
        return dt.timestamp()
    raise ValueError("not a timestamp")


def parse_command(
    device: str,
    profile: DeviceProfile,
    payload: bytes,
    *,
    max_bytes: int,
    now: float,
    ttl_s: float,
    require_ts: bool,
) -> Command:
    """Validate a command payload against the device profile. ``now`` is epoch seconds; with
    ``require_ts`` a command without ``ts`` is rejected."""
    if len(payload) > max_bytes:
        raise CommandRejected(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise CommandRejected(f"payload is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise CommandRejected("payload must be a JSON object of point keys to values")
    tx = _transaction(data)
    if "ts" not in data and require_ts:
        raise CommandRejected(MISSING_TS, tx)
    if "ts" in data:
        try:
            sent = _timestamp(data["ts"])
        except (ValueError, OverflowError) as err:
            raise CommandRejected("ts must be ISO-8601 with timezone or epoch seconds", tx) from err
        if now - sent > ttl_s:
            raise CommandRejected(
                f"command is {now - sent:.1f} s old (TTL {ttl_s} s)", tx, CommandStatus.STALE
            )
        if sent - now > MAX_FUTURE_SKEW_S:
            raise CommandRejected("ts lies in the future; check the sender's clock", tx)
    requested = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
    if not requested:
        raise CommandRejected("no point to set", tx)
    problems: list[str] = []
    writes: list[Write] = []
    for key, value in requested.items():
        try:
            point = profile.point(key)
        except KeyError:
            problems.append(f"unknown point {key!r}")
            continue
        if not point.writable:
            problems.append(f"point {key!r} is read-only")
            continue
        try:
            if point.table.is_bit:
                on = parse_bool(point, value)
                writes.append(Write(point, "ON" if on else "OFF", coil=on))
            else:
                writes.append(Write(point, value, registers=tuple(encode_registers(point, value))))
        except CodecError as err:
            problems.append(str(err))
    if problems:
        raise CommandRejected("; ".join(problems), tx)
    return Command(device=device, transaction=tx, writes=tuple(writes))


@dataclass
class TransactionLog:
    """Remembers recent transaction ids so a repeated id executes once and gets the same answer."""

    capacity: int = 1024
    _entries: OrderedDict[tuple[str, str], asyncio.Future[bytes]] = field(default_factory=OrderedDict)

    def claim(self, device: str, transaction: str) -> tuple[bool, asyncio.Future[bytes]]:
        """Return (first_time, future of the response payload)."""
        key = (device, transaction)
        fut = self._entries.get(key)
        if fut is not None:
            self._entries.move_to_end(key)
            return False, fut
        fut = asyncio.get_running_loop().create_future()
        self._entries[key] = fut
        while len(self._entries) > self.capacity:
            # Forgetting an id only ends deduplication for it; a caller awaiting it still gets its answer.
            self._entries.popitem(last=False)
        return True, fut

    def remember(self, device: str, transaction: str, response: bytes) -> None:
        """A transaction another process answered (active/standby): a repeat gets the same answer."""
        first, fut = self.claim(device, transaction)
        if first:
            fut.set_result(response)
