"""Alembic environment: runs on the engine handed over by ``portal.db.upgrade`` (or alembic's own URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, engine_from_config, pool

from portal.models import Base

config = context.config
engine: Engine | None = config.attributes.get("engine")
if engine is None:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), poolclass=pool.NullPool)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
