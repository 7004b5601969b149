"""Active and standby for one gateway (``gateway.lease_s``): a lease on the broker, fenced with an epoch,
and the commands the active one claims shared through the broker (docs/mqtt.md, "Active and standby").

Two or more processes run the same site file. The **lease** is the retained message on
``<base>/bridge/<gateway>/lease``: ``{"holder", "epoch", "sent"}``. Mosquitto hands the messages of one
topic to every subscriber in the same order, so every process applies the same rule to the same sequence:
a claim with a higher epoch wins; a second claim with an epoch already taken is void (the first one in
the broker's order won). The holder re-publishes its record every ``lease_s * 2/9`` and acts only while
its own renewal came back within the last ``lease_s * 2/3`` (counted from when it was *sent*); a standby
claims only after it has seen no renewal for ``lease_s``. So a holder cut off from the broker stops
polling and writing a third of a lease before anyone may take over, and a standby that cannot reach the
broker never sees its claim come back, so it never takes over.

**Commands** are shared on ``<base>/bridge/<gateway>/transactions``: the active process publishes
``claimed`` (and waits for the broker's acknowledgement) before it writes, then ``done`` with the
response. A standby keeps the commands it receives until the active one claims them; when it takes over
it answers the claimed-but-unfinished ones ``timeout`` (their outcome is unknown, they are never
repeated) and executes the ones nobody claimed (within their TTL). Everything the broker delivered before
the old holder's lease ran out was delivered to the standby first, in the same order.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from bcc_common.lease import LeaseChange, LeaseTerm

__all__ = ["CommandShare", "LeaseLost", "LeaseRecord", "SharedLease", "command_key"]

FREE = ""  # the holder of a released lease


class LeaseLost(Exception):
    """This process held the lease and lost it: it stops (its supervisor restarts it as a standby)."""


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    epoch: int
    sent: float = 0.0  # the holder's own monotonic clock: only the holder reads it
    # Which run of the holder (a restarted process keeps its --instance name but is not the holder).
    nonce: str = ""

    def payload(self) -> bytes:
        body = {"holder": self.holder, "epoch": self.epoch, "sent": self.sent, "nonce": self.nonce}
        return orjson.dumps({**body, "ts": time.time()})

    @staticmethod
    def parse(payload: bytes) -> LeaseRecord | None:
        try:
            body = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        holder, epoch, sent = body.get("holder"), body.get("epoch"), body.get("sent", 0.0)
        nonce = body.get("nonce", "")
        if not isinstance(holder, str) or not isinstance(epoch, int) or not isinstance(sent, int | float):
            return None
        return LeaseRecord(holder, epoch, float(sent), nonce if isinstance(nonce, str) else "")


@dataclass
class SharedLease:
    """The lease as one process sees it, from the messages on the lease topic in the broker's order."""

    instance: str
    lease_s: float
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    current: LeaseRecord | None = None
    seen_at: float = field(default_factory=time.monotonic)  # the current holder's last renewal, here
    term: LeaseTerm = field(init=False)
    _claimed_at: float = -1e9
    void_seen: bool = False  # a void claim came after ours: re-assert with a new epoch

    def __post_init__(self) -> None:
        # The holder's own term is two thirds of the lease: it stops a third before a standby may claim.
        self.term = LeaseTerm(self.lease_s * 2 / 3)

    @property
    def epoch(self) -> int:
        return self.current.epoch if self.current is not None else 0

    def active(self, now: float) -> bool:
        return self.term.active(now)

    def holds(self) -> bool:
        """The latest valid record is ours (this run's: a restart under the same name is not)."""
        cur = self.current
        return cur is not None and cur.holder == self.instance and cur.nonce == self.nonce

    def on_message(self, payload: bytes, now: float) -> LeaseChange | None:
        rec = LeaseRecord.parse(payload)
        if rec is None:
            return None
        cur = self.current
        if cur is None or rec.epoch > cur.epoch:
            self.current, self.seen_at = rec, now
        elif rec.epoch == cur.epoch and (rec.holder, rec.nonce) == (cur.holder, cur.nonce):
            self.seen_at = now  # a renewal
        else:  # a claim that lost the race (or an old record): void for everyone
            self.void_seen = self.holds()
            return None
        if self.holds():
            # Our own claim or renewal came back: the broker had us at the time it was sent.
            return self.term.record(True, now, since=min(rec.sent, now))
        if self.term.active(now):  # someone with a higher epoch: we are no longer the holder
            self.term.release()
            return LeaseChange.LOST
        return None

    def claim(self, now: float) -> LeaseRecord | None:
        """Our claim when the lease is free or expired and we have not just claimed, else None."""
        cur = self.current
        free = cur is None or cur.holder == FREE or now - self.seen_at > self.lease_s
        if self.holds() or not free or now - self._claimed_at < self.lease_s / 3:
            return None
        self._claimed_at = now
        return LeaseRecord(self.instance, self.epoch + 1, now, self.nonce)

    def renewal(self, now: float) -> LeaseRecord | None:
        """Our renewal when one is due while we hold the lease (a new epoch after a void claim)."""
        if not self.holds() or not self.term.due(now):
            return None
        self.term.renew_at = now + self.term.lease_s / 3
        epoch = self.epoch + 1 if self.void_seen else self.epoch
        self.void_seen = False
        return LeaseRecord(self.instance, epoch, now, self.nonce)

    def expired(self, now: float) -> bool:
        """We held the lease and our renewals stopped coming back in time: stop acting."""
        return self.holds() and self.term.held_until > 0 and not self.term.active(now)

    def release(self) -> LeaseRecord | None:
        """The record that frees the lease at once (a clean stop of the holder), or None."""
        if not self.holds():
            return None
        self.term.release()
        return LeaseRecord(FREE, self.epoch + 1)


def command_key(device: str, transaction: str | None, payload: bytes) -> str:
    """What identifies one command across processes: its transaction id, else its exact payload."""
    if transaction is not None:
        return f"{device}|t|{transaction}"
    return f"{device}|p|{hashlib.sha256(payload).hexdigest()[:32]}"


@dataclass
class Waiting:
    topic: str
    payload: bytes
    received: float


@dataclass
class CommandShare:
    """A standby's view of the commands: received but not claimed, and claimed but not finished."""

    keep_s: float  # the command TTL: older unclaimed commands would be answered stale anyway
    waiting: OrderedDict[str, Waiting] = field(default_factory=OrderedDict)
    unfinished: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # key -> (device, txn)
    finished: list[tuple[str, str, bytes]] = field(default_factory=list)  # (device, txn, response)

    def received(self, key: str, topic: str, payload: bytes, now: float) -> None:
        self.waiting[key] = Waiting(topic, payload, now)
        while self.waiting:
            oldest = next(iter(self.waiting.values()))
            if now - oldest.received <= self.keep_s + 1:
                break
            self.waiting.popitem(last=False)

    def on_record(self, payload: bytes) -> None:
        """A ``claimed`` or ``done`` record of the active process."""
        try:
            body: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            return
        key, device, txn = body["key"], str(body.get("device", "")), body.get("transaction")
        txn = str(txn) if txn is not None else None
        self.waiting.pop(key, None)
        if body.get("phase") == "claimed":
            self.unfinished[key] = (device, txn)
        elif body.get("phase") == "done":
            self.unfinished.pop(key, None)
            response = body.get("response")
            if txn is not None and isinstance(response, dict):
                self.finished.append((device, txn, orjson.dumps(response)))
                del self.finished[:-4096]

    @staticmethod
    def record(phase: str, key: str, device: str, txn: str | None, response: bytes | None = None) -> bytes:
        body: dict[str, Any] = {"phase": phase, "key": key, "device": device, "transaction": txn}
        if response is not None:
            body["response"] = orjson.loads(response)
        return orjson.dumps(body)
