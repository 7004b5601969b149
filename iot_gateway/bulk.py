"""Bulk telemetry (``gateway.telemetry_batch_ms``): device states collected for a few milliseconds and
published together, ``{"<device>": [<state>, ...], ...}``, QoS 1, on ``<base>/bridge/<gateway>/telemetry``.

Each state is also published on the device's own retained topic, unchanged: Home Assistant, the
console and any other reader keep working. The recorder reads the bulk topic instead, so a gateway
with hundreds of devices sends it one MQTT message per batch instead of one per device state (the
per-message cost, not the values, limits a Python subscriber: docs/performance.md, Recorder).

States are kept as the JSON their device topic carried, and the batch is written by concatenation
(no second encoding). While the broker is away, batches stay pending (oldest dropped beyond
``max_pending`` states, counted) and go out after the reconnect: the history survives a broker
outage, not just the latest retained state.

With ``gateway.telemetry_spool_path`` the pending states also survive a gateway restart: when a
publish fails (the broker is away), the window's states move to a SQLite file (``TelemetrySpool``,
one transaction per window), and it is emptied oldest first, each row deleted once the broker has
acknowledged (PUBACK) the message that carried it. A running gateway whose broker is up never
touches the file. What a kill can cost: the states of the current window not yet written (at most
``telemetry_batch_ms`` of them), and, if the kill falls between a PUBACK and the delete, one message
sent again after the restart (the recorder stores it again with the same source time, which
InfluxDB overwrites with itself).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import orjson
import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

PublishOk = Callable[[str, bytes, bool], Awaitable[bool]]
# Well under the broker's message_size_limit (mosquitto/mosquitto.conf: 256 KiB).
MAX_MESSAGE_BYTES = 200_000
# Rows read from the spool for one message (a message holds what fits in ``max_bytes``).
SPOOL_READ_ROWS = 2_000


class SpoolError(RuntimeError):
    """The telemetry spool file cannot be opened or written (path, permissions, a full disk)."""


class TelemetrySpool:
    """Pending bulk telemetry states on disk: SQLite in WAL mode, oldest first.

    ``synchronous=NORMAL``: a commit is in the WAL when it returns, so it survives a killed gateway
    (not a power cut). One connection, used from the event loop: every statement is one small
    transaction per telemetry window. One file per gateway process.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pending "
                "(id INTEGER PRIMARY KEY, device BLOB NOT NULL, state BLOB NOT NULL)"
            )
            self.rows: int = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        except (sqlite3.Error, OSError) as err:
            raise SpoolError(f"telemetry spool {self.path}: {err}") from err

    def append(self, states: Sequence[tuple[bytes, bytes]]) -> None:
        """Add (JSON device id, state JSON) pairs, in order, in one transaction."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO pending (device, state) VALUES (?, ?)", states)
        except sqlite3.Error as err:
            raise SpoolError(f"telemetry spool {self.path}: {err}") from err
        self.rows += len(states)

    def oldest(self, limit: int = SPOOL_READ_ROWS) -> list[tuple[int, bytes, bytes]]:
        rows = self._db.execute("SELECT id, device, state FROM pending ORDER BY id LIMIT ?", (limit,))
        return [(i, bytes(d), bytes(s)) for i, d, s in rows]

    def delete_through(self, last_id: int) -> None:
        """Forget every row up to ``last_id`` (the broker acknowledged them)."""
        try:
            deleted = self._db.execute("DELETE FROM pending WHERE id <= ?", (last_id,)).rowcount
        except sqlite3.Error as err:
            raise SpoolError(f"telemetry spool {self.path}: {err}") from err
        self.rows -= deleted

    def trim(self, keep: int) -> int:
        """Drop the oldest rows beyond ``keep``; return how many."""
        excess = self.rows - keep
        if excess <= 0:
            return 0
        try:
            self._db.execute(
                "DELETE FROM pending WHERE id IN (SELECT id FROM pending ORDER BY id LIMIT ?)", (excess,)
            )
        except sqlite3.Error as err:
            raise SpoolError(f"telemetry spool {self.path}: {err}") from err
        self.rows -= excess
        return excess

    def close(self) -> None:
        self._db.close()


def spooled_states(path: Path | str) -> list[tuple[str, bytes]]:
    """Every (device id, state JSON) waiting in a spool file, oldest first, read without writing (a
    running gateway may hold the file); for tools and tests."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT device, state FROM pending ORDER BY id").fetchall()
    finally:
        db.close()
    return [(orjson.loads(d), bytes(s)) for d, s in rows]


class TelemetryBatcher:
    def __init__(
        self,
        publish: PublishOk,
        topic: str,
        interval_s: float,
        sent: Counter,
        dropped: Counter,
        max_pending: int = 100_000,
        max_bytes: int = MAX_MESSAGE_BYTES,
        spool: TelemetrySpool | None = None,
    ) -> None:
        self._publish = publish
        self.topic = topic
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self._sent = sent
        self._dropped = dropped
        self._pending: deque[tuple[bytes, bytes]] = deque()  # (JSON-encoded device id, state JSON)
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()  # the stop path's last flush must not resend run()'s batch
        self._evicted = 0  # states add() dropped from the left of memory (see flush)
        self.spool = spool
        if spool is not None:
            self._dropped.inc(spool.trim(max_pending))  # the bound may have been lowered
            if spool.rows:
                self._wake.set()  # left by an earlier run: send them once the broker is there

    @property
    def pending(self) -> int:
        """States not yet acknowledged by the broker: in memory and in the spool file."""
        return len(self._pending) + (self.spool.rows if self.spool is not None else 0)

    def add(self, device: str, state: bytes) -> None:
        """Queue one state exactly as published on the device's topic."""
        self._pending.append((orjson.dumps(device), state))
        if len(self._pending) > self.max_pending:
            self._pending.popleft()
            self._evicted += 1
            self._dropped.inc()
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.interval_s)  # collect what else arrives in this window
            self._wake.clear()
            if not await self.flush():  # the broker is away: keep them, try again next interval
                self.spill()
                self._wake.set()

    async def flush(self) -> bool:
        """Publish everything pending, oldest first (the spool, then memory), in messages of at most
        ``max_bytes``; stop at the first failed publish and keep the rest. True when all went out."""
        async with self._flushing:
            spool = self.spool
            while spool is not None and spool.rows:
                rows = spool.oldest()
                if not rows:  # the count is only bookkeeping: the file decides
                    spool.rows = 0
                    break
                count, payload = self._encode((d, s) for _, d, s in rows)
                if not await self._publish(self.topic, payload, False):
                    log.debug("bulk_telemetry_held", pending=self.pending)
                    return False
                self._sent.inc(count)
                try:
                    spool.delete_through(rows[count - 1][0])
                except SpoolError as err:  # sent, not forgotten: they go again (at least once)
                    log.error("bulk_telemetry_spool_failed", error=str(err))
                    return False
            while self._pending:
                count, payload = self._encode(self._pending)
                evicted = self._evicted
                if not await self._publish(self.topic, payload, False):
                    log.debug("bulk_telemetry_held", pending=self.pending)
                    return False
                # add() may have dropped the oldest (these) while the publish waited: not twice.
                for _ in range(count - min(count, self._evicted - evicted)):
                    self._pending.popleft()
                self._sent.inc(count)
            return True

    def spill(self) -> None:
        """Move the states held in memory to the spool file (when there is one), keeping the bound."""
        if self.spool is None or not self._pending:
            return
        try:
            self.spool.append(list(self._pending))
        except SpoolError as err:  # a full disk: keep them in memory (bounded) rather than stop
            log.error("bulk_telemetry_spool_failed", error=str(err), pending=len(self._pending))
            return
        self._pending.clear()
        try:
            dropped = self.spool.trim(self.max_pending)
        except SpoolError as err:
            log.error("bulk_telemetry_spool_failed", error=str(err))
            return
        if dropped:
            self._dropped.inc(dropped)
            log.warning("bulk_telemetry_dropped", states=dropped, bound=self.max_pending)

    def close(self) -> None:
        """At stop, after the last flush: what is still pending goes to the file for the next run."""
        if self.spool is not None:
            try:
                self.spill()
            finally:
                self.spool.close()

    def _encode(self, pending: Iterable[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        """The oldest of ``pending`` that fit into one message (at least one), grouped by device."""
        groups: dict[bytes, list[bytes]] = {}
        size = 2
        count = 0
        for device, state in pending:
            extra = len(state) + 1 + (0 if device in groups else len(device) + 4)
            if count and size + extra > self.max_bytes:
                break
            groups.setdefault(device, []).append(state)
            size += extra
            count += 1
        body = b",".join(device + b":[" + b",".join(states) + b"]" for device, states in groups.items())
        return count, b"{" + body + b"}"
