"""Migrations: the Alembic head matches the models on SQLite and on PostgreSQL, and keeps existing data."""

from __future__ import annotations

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, insert, inspect, text

from portal.db import make_engine, upgrade
from portal.models import Base


def test_migrations_match_the_models(portal_db_url: str) -> None:
    engine = make_engine(portal_db_url)
    upgrade(engine)  # idempotent on an up-to-date database
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_0007_keeps_existing_reports_without_a_key(empty_db_url: str) -> None:
    """Reports stored before reporter keys keep every column and get ``secret_hash`` NULL: their
    reporters' browsers claim a key later (portal.web.reporter)."""
    engine = make_engine(empty_db_url)
    upgrade(engine, "0006")
    old = MetaData()
    old.reflect(engine, only=["reports", "notifications"])
    assert "secret_hash" not in old.tables["reports"].c
    now = datetime(2026, 11, 2, 2, 0)
    row = {
        "code": "BJ-2345-6789-ABCD", "category": "kesehatan", "kecamatan": "binjai_kota",
        "kelurahan": "tangsi", "title": "Lama", "description": "Sebelum kunci", "address": "",
        "privacy": "confidential", "contact_name": "Siti", "contact_phone": "", "contact_email": "",
        "source": "web", "status": "submitted", "created_at": now, "updated_at": now, "verify_due": now,
        "verify_late": False, "respond_late": False,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(old.tables["reports"]).values(row))
    upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT code, title, privacy, contact_name, secret_hash FROM reports")
        ).one()
        outbox = [c["name"] for c in inspect(conn).get_columns("notifications")]
    engine.dispose()
    assert tuple(stored) == ("BJ-2345-6789-ABCD", "Lama", "confidential", "Siti", None)
    assert "reporter_key" in outbox
