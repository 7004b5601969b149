"""Personal data on disk: the SQLite database (with its -wal/-shm files) 0600, the media folder 0700
and each photo 0600, whatever the process umask, including what the report-writer process creates."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from portal.db import make_engine, upgrade
from portal.main import create_app
from portal.runtime import runtime_of
from portal.services import reports
from tests.support.portal_app import FakeClock, jpeg, make_settings, submit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0000: every file would be world-readable unless the code sets its mode itself."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_new_sqlite_database_and_wal_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "var" / "portal.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with engine.begin() as conn:  # a write: SQLite creates the -wal and -shm files
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        assert all(f.exists() for f in sqlite_files(db))
        assert {f.name: mode(f) for f in sqlite_files(db)} == {f.name: 0o600 for f in sqlite_files(db)}
    engine.dispose()
    assert mode(db.parent) == 0o700  # the folder it created


@pytest.mark.usefixtures("open_umask")
def test_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "portal.db"
    older = sqlite3.connect(db)  # as an earlier version left it: 0644, in WAL mode, files present
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE probe (x INTEGER)")
    older.commit()
    for f in sqlite_files(db):
        f.chmod(0o644)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM probe"))
        assert [mode(f) for f in sqlite_files(db)] == [0o600] * 3
    engine.dispose()
    older.close()


@pytest.mark.usefixtures("open_umask")
def test_running_portal_keeps_reporters_data_private(tmp_path: Path) -> None:
    """The real app with its report-writer process: after a report with a photo, every file holding
    personal data is readable by the portal's account only."""
    db = tmp_path / "data" / "portal.db"
    engine = make_engine(f"sqlite:///{db}")  # what `bcc portal run` does first
    upgrade(engine)
    engine.dispose()
    (tmp_path / "media").mkdir(mode=0o755)  # a media folder from an earlier version
    settings = make_settings(f"sqlite:///{db}", tmp_path)
    app = create_app(settings, clock=FakeClock().now)
    with TestClient(app) as client:
        code = submit(client, photos=[jpeg()])
        with runtime_of(app).sessions() as session:
            (photo,) = reports.get_by_code(session, code).photos
        media = settings.media_dir
        assert mode(media) == 0o700 and mode(media / photo.filename) == 0o600
        assert [mode(f) for f in sqlite_files(db) if f.exists()] == [0o600] * 3
