"""Pytest plugin: portal databases on SQLite and on a real PostgreSQL (a throwaway database per run).

``portal_db_url`` is parametrized over both backends, so every test using it runs twice; so is
``empty_db_url``, a new database that no migration has touched (backup and upgrade tests). SQLite tests
copy a migrated template file; PostgreSQL tests share one migrated database per run and start from
empty tables. PostgreSQL is expected at ``BCC_TEST_POSTGRES`` (default: postgres@127.0.0.1:5432, trust).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url, text

from portal.db import make_engine, upgrade
from portal.models import Base

ADMIN_DSN = os.environ.get("BCC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped at the end."""
    with new_postgres_database("bcc_portal_test_") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("portal-template") / "portal.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def portal_db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty portal database on each backend."""
    if request.param == "sqlite":
        target = tmp_path / "portal.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    url: str = request.getfixturevalue("postgres_url")
    empty_tables(url)
    yield url


@contextmanager
def new_postgres_database(prefix: str = "bcc_portal_fresh_") -> Iterator[str]:
    """A new, empty (not migrated) PostgreSQL database, dropped afterwards; its URL."""
    name = prefix + secrets.token_hex(6)
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.fail(f"PostgreSQL not reachable at {ADMIN_DSN}: {err} (see docs/portal.md, Tests)")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_postgres_database(url: str) -> None:
    """Drop the database at ``url`` and create it again, empty, owned by the URL's user (a wiped server
    where the installer created the portal's database again)."""
    parsed = make_url(url)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{parsed.database}" OWNER "{parsed.username}"')


@contextmanager
def owned_by_new_role(url: str) -> Iterator[str]:
    """Give the database at ``url`` to a new login role (not a superuser) with a password, as the
    installer sets the portal up; the URL as that role. The role is dropped afterwards."""
    parsed = make_url(url)
    role, password = "bcc_portal_role_" + secrets.token_hex(4), secrets.token_hex(16)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        admin.execute(f'ALTER DATABASE "{parsed.database}" OWNER TO "{role}"')
    try:
        yield parsed.set(username=role, password=password).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE "{role}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database on each backend that no migration has touched (an empty file for SQLite, a new
    database on the test PostgreSQL), for tests that migrate it themselves or drop it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'portal.db'}"
        return
    with new_postgres_database() as url:
        yield url


def empty_tables(url: str) -> None:
    """Empty every portal table of the PostgreSQL database at ``url``."""
    engine = make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
