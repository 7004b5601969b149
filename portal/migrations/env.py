"""Alembic environment: runs on the engine handed over by ``portal.db.upgrade`` (or alembic's own URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, engine_from_config, pool

from portal.models import Base

config = context.config
engine: Engine | None = config.attributes.get("engine")
if engine is None:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), poolclass=pool.NullPool)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


with engine.connect() as connection:
    if connection.dialect.name != "sqlite":
        run(connection)
    else:
        # SQLite's batch migrations re-create a table (copy, drop, rename). With foreign keys on, the
        # drop fails as soon as other rows reference the table (0008 on a database whose staff users
        # appear in report histories: "FOREIGN KEY constraint failed"). Off for the migrations (the
        # pragma only works outside a transaction), then every reference is checked and it is on again.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            run(connection)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migrations left rows with dangling foreign keys: {broken[:5]}")
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
