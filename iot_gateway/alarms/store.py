"""The evaluator's memory across restarts: a local SQLite file (WAL) with the last record of every alarm
that ever left ``normal`` and the audit history of every transition, which doubles as the outbox of
``<base>/alarms/events`` (an event is marked published only once the broker acknowledged it).

Each batch of transitions is committed before anything is published, so a restart resumes exactly the
states the broker was told about, or newer ones: an active alarm is neither lost nor raised twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm TEXT NOT NULL,
    body TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_unpublished ON events (seq) WHERE published = 0;
"""


class AlarmStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def load(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT id, record FROM alarms").fetchall()
        return {alarm_id: json.loads(record) for alarm_id, record in rows}

    def save(self, records: Mapping[str, Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> None:
        """Alarm records and their events in one transaction."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO alarms (id, record) VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET record = excluded.record",
                [(i, json.dumps(r)) for i, r in records.items()],
            )
            self._db.executemany(
                "INSERT INTO events (alarm, body) VALUES (?, ?)",
                [(e["alarm"], json.dumps(e)) for e in events],
            )

    def forget(self, alarm_ids: Iterable[str]) -> None:
        """Drop the records of alarms whose rule is gone (their history stays)."""
        with self._transaction():
            self._db.executemany("DELETE FROM alarms WHERE id = ?", [(i,) for i in alarm_ids])

    def unpublished(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT seq, body FROM events WHERE published = 0 ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def mark_published(self, seq: int) -> None:
        self._db.execute("UPDATE events SET published = 1 WHERE seq = ?", (seq,))

    def history(self, alarm_id: str | None = None) -> list[dict[str, Any]]:
        """The audit history, oldest first (every event with its ``seq``)."""
        sql = "SELECT seq, body FROM events" + (" WHERE alarm = ?" if alarm_id else "") + " ORDER BY seq"
        rows = self._db.execute(sql, (alarm_id,) if alarm_id else ()).fetchall()
        return [{"seq": seq, **json.loads(body)} for seq, body in rows]

    def _transaction(self) -> sqlite3.Connection:
        # sqlite3's context manager commits or rolls back; with isolation_level=None we BEGIN ourselves.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def close(self) -> None:
        self._db.close()
