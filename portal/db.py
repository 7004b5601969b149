"""Database engine, sessions and migrations (Alembic, scripts in ``portal/migrations``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Dialect, Engine, Table, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# SQLite gives its -wal and -shm files the database file's own mode, so 0600 there covers all three.
PRIVATE_FILE = 0o600
log = structlog.get_logger(__name__)


def make_engine(url: str) -> Engine:
    """Engine for SQLite (foreign keys on, WAL) or PostgreSQL (psycopg 3); creates the SQLite folder
    and file, readable by the portal's user only (:func:`private_sqlite_file`)."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: object, _record: object) -> None:
            cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode, far fewer fsyncs
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (its folder 0700 if created here) before SQLite opens it, and
    bring an existing database and its -wal/-shm files to 0600: the file holds reporters' names,
    phones and e-mails. The mode is set explicitly, whatever the process umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o777 != PRIVATE_FILE:
                file.chmod(PRIVATE_FILE)
        except FileNotFoundError:
            continue
        except PermissionError:  # owned by another account: say so, the operator must fix it
            log.warning("database_file_mode_not_changed", path=str(file))


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


@contextmanager
def writer(db: Session) -> Iterator[None]:
    """Hold this process's write lock of a SQLite database for one write transaction (no-op otherwise).

    SQLite admits one writer at a time; threads that collide wait in SQLite's busy handler, which sleeps
    in steps of up to 100 ms. Queueing them on a lock instead took concurrent submissions from
    p99 1 s to milliseconds (docs/performance.md, "Portal"). PostgreSQL needs no such lock.
    """
    bind = db.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    key = str(bind.engine.url)
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.setdefault(key, threading.Lock())
    with lock:
        yield


class RawInsert:
    """A multi-row INSERT into ``table`` as plain DB-API SQL for one dialect, for the submission hot path.

    SQLAlchemy Core spends 30-60 us per ``execute`` (cache key, compiled-cache lookup, parameter
    processing, result set-up) and the ORM more: four statements per batch cost more than the rest of
    a submission together (docs/performance.md, "Portal"). This builds the SQL text once per row count
    and converts values with the columns' own bind processors (``UTCDateTime`` included), so what it
    stores is what SQLAlchemy would store. Columns missing from a row are NULL.
    """

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        columns: Sequence[str] | None = None,
        returning: Sequence[str] = (),
    ) -> None:
        quote = dialect.identifier_preparer.quote
        self._dialect = dialect
        self.columns = list(columns or [c.name for c in table.columns if not c.primary_key])
        self._procs = [table.c[name].type.bind_processor(dialect) for name in self.columns]
        self._row = "(" + ", ".join([placeholder(dialect)] * len(self.columns)) + ")"
        self._head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in self.columns)}) VALUES "
        self._tail = f" RETURNING {', '.join(quote(c) for c in returning)}" if returning else ""
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        text = self._sql.get(rows)
        if text is None:
            text = self._sql[rows] = self._head + ", ".join([self._row] * rows) + self._tail
        return text

    def bind(self, column: str, value: object) -> object:
        """``value`` as the driver gets it for ``column`` (for a WHERE clause on the same table)."""
        proc = self._procs[self.columns.index(column)]
        return proc(value) if proc is not None and value is not None else value

    def params(self, rows: Sequence[Mapping[str, object]]) -> list[object]:
        out: list[object] = []
        pairs = list(zip(self.columns, self._procs, strict=True))
        for row in rows:
            for name, proc in pairs:
                value = row.get(name)
                out.append(proc(value) if proc is not None and value is not None else value)
        return out

    def execute(self, cursor: Any, rows: Sequence[Mapping[str, object]]) -> list[tuple[Any, ...]]:
        """Insert ``rows`` with one statement; the RETURNING rows (in no guaranteed order), if any."""
        if not rows:
            return []
        return raw_execute(self._dialect, cursor, self.sql(len(rows)), self.params(rows), bool(self._tail))


_RAW: dict[tuple[str, str, str, tuple[str, ...]], RawInsert] = {}


def raw_insert(table: Table, dialect: Dialect, returning: Sequence[str] = ()) -> RawInsert:
    """The cached :class:`RawInsert` of all of ``table``'s non-key columns for ``dialect``."""
    key = (table.name, dialect.name, str(dialect.paramstyle), tuple(returning))
    found = _RAW.get(key)
    if found is None:
        found = _RAW[key] = RawInsert(table, dialect, returning=returning)
    return found


def raw_execute(
    dialect: Dialect, cursor: Any, sql: str, params: Sequence[object], fetch: bool = True
) -> list[tuple[Any, ...]]:
    """Execute on a DB-API cursor; driver errors are raised as SQLAlchemy's (``IntegrityError`` ...),
    as they would be through SQLAlchemy, so callers handle one family of exceptions."""
    error: type[Exception] = dialect.loaded_dbapi.Error
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if fetch else []
    except error as err:
        raise DBAPIError.instance(sql, list(params), err, error) from err


def placeholder(dialect: Dialect) -> str:
    """The driver's parameter marker: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


@contextmanager
def dbapi_cursor(conn: Connection) -> Iterator[Any]:
    """A DB-API cursor in ``conn``'s transaction (for :class:`RawInsert` and other hot-path SQL),
    closed afterwards."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


class UnknownRevision(Exception):
    """The database was migrated by a newer release; the message says what to do (one line)."""


def check_known_revision(revision: str | None) -> None:
    """Raise UnknownRevision when ``revision`` is not one of this release's migrations. Releases never
    downgrade a database: going back is restoring the backup taken before the upgrade."""
    if revision is None:
        return
    script = ScriptDirectory(str(MIGRATIONS))
    try:
        script.get_revision(revision)
    except CommandError as err:
        head = script.get_current_head()
        raise UnknownRevision(
            f"the database is at migration {revision}, newer than this release (head {head}):"
            " downgrades are not supported; run the release that migrated it, or restore the backup taken"
            " before the upgrade (docs/operations.md, Upgrade)"
        ) from err


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision; None if it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent); UnknownRevision for a database that a newer
    release migrated (Alembic's own error would name a revision "it can't locate")."""
    check_known_revision(current_revision(engine))
    command.upgrade(alembic_config(engine), revision)
