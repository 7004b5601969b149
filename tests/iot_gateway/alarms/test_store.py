"""The alarm state store on the portal's database (SQLite and PostgreSQL, migrated by the portal's
Alembic scripts) and on a state file of its own: tables that match the migrations, records, history,
the outbox, and the standby lease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from iot_gateway.alarms.store import (
    METADATA,
    PORTAL_METADATA,
    TABLES,
    AlarmStore,
    StoreError,
    engine_for,
    sqlite_url,
)

T0 = 1_800_000_000.0


def event(alarm: str, kind: str, state: str, who: str = "system", note: str = "") -> dict[str, Any]:
    return {"alarm": alarm, "event": kind, "state": state, "severity": "high", "who": who, "note": note}


def test_the_service_tables_match_the_portal_migrations(portal_db_url: str) -> None:
    engine = engine_for(portal_db_url)
    # the portal's other tables are not the service's business
    opts = {"include_name": lambda name, kind, _parents: kind != "table" or name in TABLES}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), METADATA)
    engine.dispose()
    assert diff == []


def test_the_portal_columns_the_service_writes_match_the_migrations(portal_db_url: str) -> None:
    """The outbox and staff columns the evaluator uses for alarm e-mails (a part of the portal's tables)
    exist in the migrated database with the same type, length and nullability."""
    engine = engine_for(portal_db_url)
    try:
        found = inspect(engine)
        for table in PORTAL_METADATA.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            for column in table.c:
                real = columns[column.name]
                generic = real["type"].as_generic()
                assert type(generic) is type(column.type), (table.name, column.name, real["type"])
                assert getattr(real["type"], "length", None) == getattr(column.type, "length", None)
                assert real["nullable"] == column.nullable or column.primary_key, (table.name, column.name)
    finally:
        engine.dispose()
    store = AlarmStore(portal_db_url)
    assert store.notifying  # migration 0010: alarm e-mails on
    store.close()


def test_records_history_and_outbox(portal_db_url: str) -> None:
    store = AlarmStore(portal_db_url)
    try:
        assert store.load() == {}
        rec = {"state": "active_unacked", "active": True, "value": 28.1, "since": T0}
        store.save({"hot.env_front": rec}, [(T0, event("hot.env_front", "raised", "active_unacked"))], T0)
        acked = {**rec, "state": "active_acked"}
        store.save(
            {"hot.env_front": acked},
            [(T0 + 5, event("hot.env_front", "acked", "active_acked", "siti", "fan checked"))],
            T0 + 5,
        )
        store.save({"old.wall": rec}, [], T0 + 6)
        assert store.load() == {"hot.env_front": acked, "old.wall": rec}
        history = store.history("hot.env_front")
        assert [(e["event"], e["who"], e["note"]) for e in history] == [
            ("raised", "system", ""),
            ("acked", "siti", "fan checked"),
        ]
        pending = store.unpublished()
        assert [seq for seq, _ in pending] == [e["seq"] for e in history]
        store.mark_published([pending[0][0]], T0 + 7)
        store.mark_published([], T0 + 7)  # nothing to mark: no statement
        assert [seq for seq, _ in store.unpublished()] == [pending[1][0]]
        store.forget(["old.wall"])
        assert set(store.load()) == {"hot.env_front"}
        assert len(store.history()) == 2, "forgetting a record keeps its history"
    finally:
        store.close()


def test_a_database_without_the_tables_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match="no table alarm_states, alarm_events, alarm_lease: apply the portal"
    ):
        AlarmStore(sqlite_url(tmp_path / "empty.db"))
    own = AlarmStore(sqlite_url(tmp_path / "deeper" / "own.sqlite3"), create=True)
    own.close()
    AlarmStore(sqlite_url(tmp_path / "deeper" / "own.sqlite3")).close()  # created once, then found


def test_exactly_one_holder_of_the_lease(portal_db_url: str) -> None:
    store = AlarmStore(portal_db_url)
    try:
        assert store.take_lease("evaluator", "a", T0, 10)
        assert not store.take_lease("evaluator", "b", T0 + 1, 10)
        assert store.take_lease("evaluator", "a", T0 + 5, 10), "the holder renews"
        assert not store.take_lease("evaluator", "b", T0 + 14, 10), "renewed until T0 + 15"
        assert store.take_lease("evaluator", "b", T0 + 16, 10), "expired: the standby takes it"
        assert not store.take_lease("evaluator", "a", T0 + 17, 10), "the old holder lost it"
        store.release_lease("evaluator", "a")  # not the holder: nothing happens
        assert not store.take_lease("evaluator", "a", T0 + 18, 10)
        store.release_lease("evaluator", "b")
        assert store.take_lease("evaluator", "a", T0 + 19, 10), "released on a clean stop: taken at once"
    finally:
        store.close()
