"""Migrations: the Alembic head matches the models on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.db import make_engine, upgrade
from portal.models import Base


def test_migrations_match_the_models(portal_db_url: str) -> None:
    engine = make_engine(portal_db_url)
    upgrade(engine)  # idempotent on an up-to-date database
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
