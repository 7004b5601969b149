"""The portal's database in a backup. PostgreSQL: ``pg_dump --format=custom`` (one snapshot, consistent
while the portal writes) and ``pg_restore`` in one transaction. SQLite: the online backup API (a
consistent copy while the portal writes; the WAL is included)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import URL

from bcc.backup.files import copy_sqlite, restore_sqlite
from bcc.backup.manifest import BackupError
from portal.db import (
    MIGRATIONS,
    UnknownRevision,
    check_known_revision,
    current_revision,
    make_engine,
    private_sqlite_file,
)


def kind(url: str) -> str:
    """``postgresql`` or ``sqlite``; anything else is refused."""
    backend = make_url(url).get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise BackupError(f"portal database {backend!r}: only PostgreSQL and SQLite are backed up")
    return backend


def sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        raise BackupError(f"portal database {url}: not a SQLite file")
    return Path(path)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password (it goes to ``PGPASSWORD``, not into the process list)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _tool(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError as err:
        raise BackupError(f"{argv[0]} not found (Debian package postgresql-client)") from err
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{argv[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout


def tool_version(name: str) -> str:
    return _tool([name, "--version"]).strip()


def revisions(url: str) -> tuple[str | None, str]:
    """(the database's Alembic revision, None if never migrated; this release's head)."""
    engine = make_engine(url)
    try:
        return current_revision(engine), ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""
    finally:
        engine.dispose()


def check_known(revision: str | None) -> None:
    """Refuse a backup whose schema this release does not know (taken by a newer release)."""
    try:
        check_known_revision(revision)
    except UnknownRevision as err:
        raise BackupError(f"the backup's database: {err}") from err


def server_version(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return "sqlite " + str(conn.execute(text("SELECT sqlite_version()")).scalar())
            return "postgresql " + str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def dump(url: str, dest: Path) -> None:
    """A consistent copy of the running portal's database at ``dest``."""
    if kind(url) == "sqlite":
        source = sqlite_path(url)
        if not source.is_file():
            raise BackupError(f"portal database {source}: no such file")
        copy_sqlite(source, dest)
        return
    uri, env = _libpq(url)
    _tool(["pg_dump", "--format=custom", "--file", str(dest), "--dbname", uri], env)


def is_empty(url: str) -> bool:
    """No table at all (PostgreSQL), or no file or an empty one (SQLite)."""
    if kind(url) == "sqlite":
        path = sqlite_path(url)
        return not path.exists() or path.stat().st_size == 0
    engine = make_engine(url)
    try:
        return not inspect(engine).get_table_names()
    except Exception as err:  # the target must answer before anything is restored
        raise BackupError(f"portal database unreachable: {str(err).splitlines()[0]}") from err
    finally:
        engine.dispose()


def restore(url: str, source: Path, replace: bool) -> None:
    """Load ``source`` into the portal's database; ``replace`` drops what the dump holds first."""
    if kind(url) == "sqlite":
        _restore_sqlite(source, sqlite_path(url))
        return
    uri, env = _libpq(url)
    argv = ["pg_restore", "--no-owner", "--no-acl", "--single-transaction", "--exit-on-error"]
    if replace:
        argv += ["--clean", "--if-exists"]
    _tool([*argv, "--dbname", uri, str(source)], env)


def _restore_sqlite(source: Path, target: Path) -> None:
    restore_sqlite(source, target)
    private_sqlite_file(target)
