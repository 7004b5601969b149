"""The durable spool: SQLite in WAL mode between MQTT and InfluxDB, read oldest first.

A message is acknowledged to the broker only after the transaction holding its lines has committed,
so a killed recorder loses nothing (the broker re-sends what was not acknowledged). Rows leave the
spool only when InfluxDB accepted them (or they were dead-lettered). The spool is bounded by
``max_points`` field values; beyond it the oldest rows not being written are dropped and counted
(``dropped`` survives restarts). One connection, used from the event loop: every statement here is a
small indexed insert, range read or range delete (well under a millisecond for ordinary batches).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY, n INTEGER NOT NULL, rp TEXT NOT NULL DEFAULT '', body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (topic TEXT PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# Space kept free next to the spool for emptying it when the disk is full (see ``relieve``).
RESERVE_BYTES = 1 << 20


@dataclass(frozen=True)
class Batch:
    """The oldest rows of the spool (one line each): ids ``first..last``, for one ``/write``."""

    first: int
    last: int
    points: int
    lines: list[bytes]
    counts: list[int]  # field values of each line
    rp: str = ""  # retention policy of every row in the batch ("" = the database default)


class Spool:
    def __init__(
        self, path: Path | str, max_points: int, sync: str = "normal", reserve_bytes: int = RESERVE_BYTES
    ) -> None:
        self.path = Path(path)
        self.max_points = max_points
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reserve_path = self.path.with_name(self.path.name + "-reserve")
        self.reserve_bytes = reserve_bytes
        self.restore_reserve()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit is in the WAL (OS page cache) when it returns, so it survives SIGKILL of
        # the recorder; FULL also fsyncs each commit, surviving a power cut at a throughput cost.
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(SUM(n), 0), COUNT(*) FROM spool").fetchone()
        self.depth: int = row[0]
        self.rows: int = row[1]
        # Rows handed to the writer and not yet acknowledged: never dropped by the overflow policy.
        self.in_flight_last = 0

    def close(self) -> None:
        self._db.close()

    # ---- a full disk -----------------------------------------------------------------------------
    # Removing rows needs space too (WAL mode appends the changed pages to the WAL), so on a full disk
    # the writer could not empty the spool even with InfluxDB back. A reserve file, allocated while
    # there is room, is given up for the writer when that happens (``relieve``) and re-created once
    # the spool is empty.
    def restore_reserve(self) -> None:
        if self.reserve_bytes <= 0 or self.reserve_path.exists():
            return
        try:
            with self.reserve_path.open("wb") as f:
                f.write(bytes(self.reserve_bytes))  # real blocks, not a sparse file
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            self.reserve_path.unlink(missing_ok=True)  # no room yet: try again later

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (frees the WAL's space)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def relieve(self) -> bool:
        """Disk full: free space for removing written rows. True if the reserve was given up."""
        released = self.reserve_path.exists()
        self.reserve_path.unlink(missing_ok=True)
        self.checkpoint()
        return released

    # ---- counters that survive restarts --------------------------------------------------------
    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    # ---- producer side ---------------------------------------------------------------------------
    def append(
        self,
        rows: Sequence[tuple[int, str, bytes]],
        dead: Iterable[tuple[str, int, bytes]] = (),
        seen: Iterable[tuple[str, bytes]] = (),
    ) -> int:
        """Store ``(points, retention policy, body)`` rows, dead letters and seen payloads in one transaction.

        Returns the number of points dropped to stay within ``max_points`` (oldest first).
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                db.executemany("INSERT INTO spool(n, rp, body) VALUES (?, ?, ?)", rows)
            now = time.time()
            db.executemany(
                "INSERT INTO dead(at, reason, n, body) VALUES (?, ?, ?, ?)",
                [(now, reason, n, body) for reason, n, body in dead],
            )
            db.executemany(
                "INSERT INTO seen(topic, payload) VALUES (?, ?) "
                "ON CONFLICT(topic) DO UPDATE SET payload = excluded.payload",
                list(seen),
            )
            added = sum(row[0] for row in rows)
            dropped, dropped_rows = self._enforce_bound(self.depth + added) if rows else (0, 0)
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        # Only after the commit: a failed transaction (disk full) leaves the counts as they were.
        self.depth += added - dropped
        self.rows += len(rows) - dropped_rows
        return dropped

    def _enforce_bound(self, depth: int) -> tuple[int, int]:
        """Delete the oldest rows not in flight until ``depth`` fits; (points, rows) deleted."""
        excess = depth - self.max_points
        if excess <= 0:
            return 0, 0
        cut, dropped, count = 0, 0, 0
        for row_id, n in self._db.execute(
            "SELECT id, n FROM spool WHERE id > ? ORDER BY id", (self.in_flight_last,)
        ):
            cut, dropped, count = row_id, dropped + n, count + 1
            if dropped >= excess:
                break
        if cut:
            self._db.execute("DELETE FROM spool WHERE id > ? AND id <= ?", (self.in_flight_last, cut))
            self._bump("dropped", dropped)
        return dropped, count

    def seen(self, topic: str) -> bytes | None:
        row = self._db.execute("SELECT payload FROM seen WHERE topic = ?", (topic,)).fetchone()
        return bytes(row[0]) if row else None

    # ---- consumer side ---------------------------------------------------------------------------
    def peek(self, max_points: int) -> Batch | None:
        """The oldest rows, up to ``max_points`` field values (at least one row)."""
        lines: list[bytes] = []
        counts: list[int] = []
        first = last = points = 0
        batch_rp = ""
        query = "SELECT id, n, rp, body FROM spool ORDER BY id LIMIT ?"
        for row_id, n, rp, body in self._db.execute(query, (max_points,)):
            if lines and (points + n > max_points or rp != batch_rp):
                break  # one write goes to one retention policy
            first, batch_rp = first or row_id, rp
            last, points = row_id, points + n
            lines.append(body)
            counts.append(n)
        if not lines:
            return None
        self.in_flight_last = last
        return Batch(first, last, points, lines, counts, batch_rp)

    def ack(self, batch: Batch, dead: Iterable[tuple[str, int, bytes]] = ()) -> None:
        """Remove a written batch, storing its dead letters (reason, values, line) in the same transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT COALESCE(SUM(n), 0), COUNT(*) FROM spool WHERE id <= ?", (batch.last,)
            ).fetchone()
            db.execute("DELETE FROM spool WHERE id <= ?", (batch.last,))
            now = time.time()
            db.executemany(
                "INSERT INTO dead(at, reason, n, body) VALUES (?, ?, ?, ?)",
                [(now, reason, n, body) for reason, n, body in dead],
            )
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.depth -= row[0]
        self.rows -= row[1]
        self.in_flight_last = 0

    def _rollback(self) -> None:
        # SQLite may already have rolled back (SQLITE_FULL on COMMIT): ROLLBACK would then raise and hide
        # the original error.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def release(self) -> None:
        """The batch in flight failed and stays in the spool (it may be dropped again if full)."""
        self.in_flight_last = 0

    def dead_letters(self) -> list[tuple[str, int, bytes]]:
        query = "SELECT reason, n, body FROM dead ORDER BY id"
        return [(r, n, bytes(b)) for r, n, b in self._db.execute(query)]

    def dead_points(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(n), 0) FROM dead").fetchone()[0])
