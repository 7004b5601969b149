"""The command room as the operator console sees it: the plan (from the site file), the live state (from
the retained MQTT state the gateway publishes), and the commands the console may send.

``RoomPlan`` is static: which circuits, displays, sensors and meter readings exist, with labels and
units from the device profiles. ``LiveRoom`` keeps the latest state and availability of every device in
memory (fed by the portal's MQTT client thread), tracks the console's pending commands until the
gateway's response arrives (or the response time runs out), writes the result to the audit table, and
fans every change out to the server-sent-event streams of connected consoles.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy.orm import Session, sessionmaker

from bcc_contract.commands import RESULT_STATUSES
from devices.loader import LoadedSite, load_site
from portal.models import User
from portal.services import audit

log = structlog.get_logger(__name__)

LIGHT_DEVICES = ("lights_a", "lights_b")
WALL = "wall"
ENV_DEVICES = ("env_front", "env_back")
METER = "meter_main"
ENV_POINTS = ("temperature", "humidity", "co2", "illuminance")
METER_POINTS = ("power_total", "energy_import")
ON_OFF = ("ON", "OFF")
# Statuses of a command's response (docs/mqtt.md) plus the console's own ``pending``.


@dataclass(frozen=True)
class Tile:
    """One value on the plan: device, point key, label (id/en) and unit."""

    device: str
    point: str
    label_id: str
    label_en: str
    unit: str = ""


@dataclass(frozen=True)
class Display:
    number: int
    power: str  # writable coil key, e.g. display_3_power
    feedback: str  # read-only input key, e.g. display_3_on


@dataclass(frozen=True)
class RoomPlan:
    site: str
    label: str
    devices: tuple[tuple[str, str], ...]  # (id, name)
    circuits: tuple[Tile, ...]
    displays: tuple[Display, ...]
    layouts: tuple[str, ...]
    env: tuple[tuple[str, str, tuple[Tile, ...]], ...]  # (device, name, tiles)
    meter: tuple[Tile, ...]

    def device_ids(self) -> set[str]:
        return {d for d, _ in self.devices}

    def circuit(self, device: str, point: str) -> Tile | None:
        return next((c for c in self.circuits if c.device == device and c.point == point), None)


def load_plan(path: Path | str) -> RoomPlan:
    """The plan of the room from a site file; devices the console does not know are simply not drawn."""
    return _cached_plan(str(path), Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached_plan(path: str, mtime_ns: int) -> RoomPlan:  # the plan is immutable: one per file version
    return plan_from_site(load_site(path))


def plan_from_site(loaded: LoadedSite) -> RoomPlan:
    by_id = {d.id: d for d in loaded.site.devices}

    def points(device: str) -> dict[str, Any]:
        if device not in by_id:
            return {}
        return {p.key: p for p in loaded.profile_of(by_id[device]).points}

    def tile(device: str, key: str, number: int | None = None) -> Tile | None:
        p = points(device).get(key)
        if p is None:
            return None
        label_id, label_en = p.label.id, p.label.en
        if number is not None:
            label_id, label_en = f"Sirkuit {number}", f"Circuit {number}"
        return Tile(device, key, label_id, label_en, p.unit or "")

    circuits: list[Tile] = []
    for offset, device in enumerate(LIGHT_DEVICES):
        for i in range(1, 9):
            t = tile(device, f"relay_{i}", offset * 8 + i)
            if t is not None:
                circuits.append(t)
    wall = points(WALL)
    displays = tuple(
        Display(n, f"display_{n}_power", f"display_{n}_on")
        for n in range(1, 8)
        if f"display_{n}_power" in wall
    )
    layout = wall.get("layout")
    layouts = tuple(layout.enum.values()) if layout is not None and layout.enum else ()
    env = tuple(
        (d, by_id[d].name, tuple(t for k in ENV_POINTS if (t := tile(d, k)) is not None))
        for d in ENV_DEVICES
        if d in by_id
    )
    meter = tuple(t for k in METER_POINTS if (t := tile(METER, k)) is not None)
    return RoomPlan(
        site=loaded.site.site,
        label=loaded.site.label or loaded.site.site,
        devices=tuple((d.id, d.name) for d in loaded.site.devices),
        circuits=tuple(circuits),
        displays=displays,
        layouts=layouts,
        env=env,
        meter=meter,
    )


# ---- commands ------------------------------------------------------------------------------------------
class CommandRefused(ValueError):
    """The console action is not one the plan allows (unknown circuit, layout, value)."""


@dataclass(frozen=True)
class ConsoleCommand:
    device: str
    payload: dict[str, Any]  # point -> absolute value, without transaction/ts
    action: str  # human description for the audit, e.g. "lights_a.relay_3 ON"


def build_commands(plan: RoomPlan, action: str, target: str, value: str) -> list[ConsoleCommand]:
    """Validate one console action and turn it into gateway commands (one per device)."""
    if action == "layout":
        if value not in plan.layouts:
            raise CommandRefused("unknown layout")
        return [ConsoleCommand(WALL, {"layout": value}, f"wall layout {value}")]
    if value not in ON_OFF:
        raise CommandRefused("value must be ON or OFF")
    if action == "circuit":
        device, _, point = target.partition(".")
        if plan.circuit(device, point) is None:
            raise CommandRefused("unknown circuit")
        return [ConsoleCommand(device, {point: value}, f"{device}.{point} {value}")]
    if action == "circuits":
        grouped: dict[str, dict[str, Any]] = {}
        for item in target.split(","):
            device, _, point = item.strip().partition(".")
            if plan.circuit(device, point) is None:
                raise CommandRefused("unknown circuit")
            grouped.setdefault(device, {})[point] = value
        if not grouped:
            raise CommandRefused("no circuit")
        return [ConsoleCommand(d, p, f"{d} {','.join(p)} {value}") for d, p in grouped.items()]
    if action == "all_lights":
        commands: dict[str, dict[str, Any]] = {}
        for c in plan.circuits:
            commands.setdefault(c.device, {})[c.point] = value
        return [ConsoleCommand(d, p, f"all lights {value} ({d})") for d, p in commands.items()]
    if action == "display":
        display = next((d for d in plan.displays if d.power == target), None)
        if display is None:
            raise CommandRefused("unknown display")
        return [ConsoleCommand(WALL, {display.power: value}, f"wall display {display.number} {value}")]
    if action == "wall_power":
        if not plan.displays:
            raise CommandRefused("no video wall")
        return [ConsoleCommand(WALL, {d.power: value for d in plan.displays}, f"whole wall {value}")]
    raise CommandRefused("unknown action")


TXN_PREFIX = "console-"


def new_transaction() -> str:
    return TXN_PREFIX + secrets.token_hex(8)


# ---- live state ------------------------------------------------------------------------------------------
@dataclass
class Pending:
    transaction: str
    device: str


@dataclass
class LiveRoom:
    """Latest state of every device, pending console commands, and the SSE subscribers.

    Updated from the MQTT client's thread; subscribers are asyncio queues on the app's loop.
    """

    plan: RoomPlan
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    response_timeout_s: float = 5.0
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    availability: dict[str, str] = field(default_factory=dict)
    bridge: str = "unknown"
    _pending: dict[str, Pending] = field(default_factory=dict)
    _subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = field(default_factory=set)
    _waiters: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    scene_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # last run of each scene
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- snapshot and subscriptions --
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "states": {d: dict(s) for d, s in self.states.items()},
                "availability": dict(self.availability),
                "bridge": self.bridge,
                "now": time.time(),
            }

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        self._subscribers.discard(queue)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def deliver() -> None:
            for queue in list(self._subscribers):
                if queue.full():  # a stalled client: drop it rather than grow without bound
                    self._subscribers.discard(queue)
                    continue
                queue.put_nowait((kind, data))

        loop.call_soon_threadsafe(deliver)

    # -- MQTT input (called from the MQTT thread) --
    def on_state(self, device: str, payload: Any) -> None:
        if device not in self.plan.device_ids() or not isinstance(payload, dict):
            return
        with self._lock:
            self.states[device] = payload
        self._emit("state", {"device": device, "state": payload})

    def on_availability(self, device: str, value: str) -> None:
        if device not in self.plan.device_ids():
            return
        with self._lock:
            self.availability[device] = value
        self._emit("availability", {"device": device, "value": value})

    def on_bridge(self, value: str) -> None:
        with self._lock:
            self.bridge = value
        self._emit("bridge", {"value": value})

    def on_response(self, device: str, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        txn = str(payload.get("transaction", ""))
        with self._lock:
            pending = self._pending.get(txn)
            if pending is not None and pending.device == device:
                del self._pending[txn]
        if pending is None or pending.device != device:
            # Not sent by this worker: another portal worker records it; our consoles still see the result.
            # (Home Assistant's or an operator's own commands are not the console's business.)
            if txn.startswith(TXN_PREFIX):
                state = payload.get("state") or {}
                status = str(payload.get("status", ""))
                self._emit(
                    "command",
                    {
                        "transaction": txn,
                        "device": device,
                        "status": status,
                        "error": str(payload.get("error", "")),
                        "state": state,
                    },
                )
            return
        status = str(payload.get("status", ""))
        if status not in RESULT_STATUSES:
            status = "rejected"
        self._finish(txn, device, status, str(payload.get("error", "")), payload.get("state") or {})

    # -- commands --
    def track(self, transaction: str, device: str) -> None:
        """Remember a command about to be published; it times out after ``response_timeout_s``."""
        with self._lock:
            self._pending[transaction] = Pending(transaction, device)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.call_later, self.response_timeout_s, self._expire, transaction)

    def _expire(self, transaction: str) -> None:
        with self._lock:
            pending = self._pending.pop(transaction, None)
        if pending is not None:
            error = f"no response from the gateway within {self.response_timeout_s:g} s"
            # The database write must not block the loop.
            loop = self._loop
            if loop is not None:
                try:
                    loop.run_in_executor(
                        None, self._finish, transaction, pending.device, "timeout", error, {}
                    )
                except RuntimeError:  # shutting down: no executor any more
                    log.warning("console_timeout_not_recorded", transaction=transaction)

    def fail_now(self, transaction: str, device: str, error: str) -> None:
        """The command could not even be published (no broker connection)."""
        with self._lock:
            self._pending.pop(transaction, None)
        self._finish(transaction, device, "device_unavailable", error, {})

    def waiter(self, transaction: str) -> asyncio.Future[str]:
        """A future resolved with the command's final status (call on the loop, before ``track``)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[transaction] = future
        return future

    def _resolve(self, transaction: str, status: str) -> None:
        future = self._waiters.pop(transaction, None)
        if future is not None and not future.done():
            future.set_result(status)

    def _finish(self, txn: str, device: str, status: str, error: str, state: dict[str, Any]) -> None:
        try:
            with self.sessions() as db:
                audit.finish(db, txn, status, error, json.dumps(state, separators=(",", ":")), self.clock())
        except Exception as err:  # the console must still show the result
            log.warning("console_audit_failed", transaction=txn, error=repr(err))
        self._emit(
            "command",
            {"transaction": txn, "device": device, "status": status, "error": error, "state": state},
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve, txn, status)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self._emit(kind, data)


class CommandSender(Protocol):
    def publish_command(self, device: str, payload: dict[str, Any]) -> bool: ...


def send(
    room: LiveRoom,
    sender: CommandSender | None,
    db: Session,
    user: User | None,
    cmd: ConsoleCommand,
    now: datetime,
    username: str = "",
    transaction: str | None = None,
) -> str:
    """Audit, track and publish one command; returns its transaction id at once (never waits)."""
    txn = transaction or new_transaction()
    audit.record(db, user, txn, cmd.device, cmd.action, cmd.payload, now, username=username)
    room.track(txn, cmd.device)
    payload = {**cmd.payload, "transaction": txn, "ts": time.time()}
    if sender is None or not sender.publish_command(cmd.device, payload):
        room.fail_now(txn, cmd.device, "the portal is not connected to the broker")
    return txn


def age_seconds(state: dict[str, Any] | None, now: datetime | None = None) -> float | None:
    """Seconds since the device's state was read at the source (its ``ts``), or None."""
    if not state or not isinstance(state.get("ts"), str):
        return None
    try:
        ts = datetime.fromisoformat(state["ts"].replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - ts).total_seconds())
