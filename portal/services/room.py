"""The command room as the operator console sees it live: the latest retained MQTT state the gateway
publishes, the console's pending commands, and their results.

The plan (what exists, from the site file) and the commands it allows live in portal/services/plan.py
and are re-exported here. ``LiveRoom`` keeps the latest state and availability of every device in
memory (fed by the portal's MQTT client thread), tracks the console's pending commands until the
gateway's response arrives (or the response time runs out), writes the result to the audit table, and
fans every change out to the server-sent-event streams of connected consoles.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.orm import Session, sessionmaker

from bcc_contract.alarms import SEVERITIES, SHOWN_STATES
from bcc_contract.commands import RESULT_STATUSES
from bcc_contract.fleet import FleetView
from bcc_contract.topics import Topics
from portal.models import User
from portal.services import audit
from portal.services.plan import (
    CommandRefused,
    ConsoleCommand,
    RoomPlan,
    build_commands,
    load_plan,
    plan_from_site,
)

__all__ = [
    "RESULT_STATUSES",
    "CommandRefused",
    "CommandSender",
    "ConsoleCommand",
    "LiveRoom",
    "RoomPlan",
    "age_seconds",
    "alarm_rows",
    "build_commands",
    "load_plan",
    "new_transaction",
    "plan_from_site",
    "send",
]

log = structlog.get_logger(__name__)

# Statuses of a command's response (docs/mqtt.md) plus the console's own ``pending``.


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
    bridge: str = "unknown"  # the state of the site's own gateway (plan.gateway)
    # Every gateway's retained inventory and state (fleet ownership, docs/mqtt.md "Fleet").
    fleet: FleetView = field(default_factory=lambda: FleetView(Topics()))
    # The retained state of every alarm (bcc/alarms/state/<alarm>, docs/alarms.md), by alarm id.
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
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
                "gateways": self.fleet.shown_states(),
                "alarms": {a: dict(s) for a, s in self.alarms.items()},
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

    def on_bridge(self, gateway: str, value: str) -> None:
        """The retained state of one gateway of the fleet; the site's own is shown as "Gateway"."""
        with self._lock:
            self.fleet.set_state(gateway, value.encode())
        self._show_bridge(gateway)

    def on_link(self, gateway: str, value: str) -> None:
        """The bridge notification of a building behind a WAN (``0``: its link to the center is down,
        so its gateway is shown offline whatever its last state said)."""
        with self._lock:
            self.fleet.set_link(gateway, value.encode())
        self._show_bridge(gateway)

    def _show_bridge(self, gateway: str) -> None:
        with self._lock:
            if gateway != self.plan.gateway:
                return
            value = self.fleet.state_of(gateway) or "unknown"
            if value == self.bridge:
                return
            self.bridge = value
        self._emit("bridge", {"value": value})

    def on_inventory(self, gateway: str, payload: bytes) -> None:
        """The retained inventory of one gateway: which devices it owns."""
        with self._lock:
            self.fleet.set_inventory(gateway, payload)

    def offline_owner(self, device: str) -> str | None:
        """The gateway owning ``device`` when it is offline (nobody can answer the device's commands)."""
        with self._lock:
            return self.fleet.offline_owner(device)

    def on_alarm(self, alarm: str, payload: Any) -> None:
        """An alarm's retained state; an empty payload (the rule is gone) removes it."""
        with self._lock:
            if isinstance(payload, dict):
                self.alarms[alarm] = payload
            else:
                self.alarms.pop(alarm, None)
        self._emit("alarm", {"alarm": alarm, "state": payload if isinstance(payload, dict) else None})

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
        """The command could not even be published (no broker connection, its gateway offline)."""
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
    if (owner := room.offline_owner(cmd.device)) is not None:
        # No gateway can answer: its owner's retained state says offline (the fleet's inventories).
        room.fail_now(txn, cmd.device, offline_owner_error(cmd.device, owner))
    elif sender is None or not sender.publish_command(cmd.device, payload):
        room.fail_now(txn, cmd.device, "the portal is not connected to the broker")
    return txn


def offline_owner_error(device: str, gateway: str) -> str:
    """The console's answer to a command whose device's gateway is offline (both languages)."""
    return (
        f"gateway {gateway!r} yang memegang {device!r} sedang offline / "
        f"gateway {gateway!r} that owns {device!r} is offline"
    )


def alarm_rows(alarms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The alarms an operator must see (all but ``normal``), most severe first, then newest first."""
    shown = [a for a in alarms.values() if a.get("state") in SHOWN_STATES]
    shown.sort(key=lambda a: str(a.get("since") or ""), reverse=True)
    shown.sort(key=lambda a: SEVERITIES.index(a["severity"]) if a.get("severity") in SEVERITIES else 99)
    return shown


def age_seconds(state: dict[str, Any] | None, now: datetime | None = None) -> float | None:
    """Seconds since the device's state was read at the source (its ``ts``), or None."""
    if not state or not isinstance(state.get("ts"), str):
        return None
    try:
        ts = datetime.fromisoformat(state["ts"].replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - ts).total_seconds())
