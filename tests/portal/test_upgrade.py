"""Upgrading a database of the previous release: migrations 0001-0006 (the portal as released on
2026-11-28, before reporter keys and staff second factors), filled with plain SQL as that schema had
it, upgraded to head; every old row survives and the portal works on it. A database that a newer
release migrated is refused with one clear line (releases never downgrade)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, select, text

from portal.db import current_revision, make_engine, upgrade
from portal.main import create_app
from portal.models import Report, User
from portal.runtime import runtime_of
from portal.services.users import hash_password
from tests.support.portal_app import FakeClock, csrf, jpeg, make_settings

PREVIOUS_RELEASE = "0006"
PUBLIC, CONFIDENTIAL = "BJ-2611-0001-AAAA", "BJ-2611-0002-BBBB"
PHOTO = "0123456789abcdef0123456789abcdef.jpg"
ADMIN_PASSWORD = "lama-tapi-kuat-sekali-2026"


def at(engine: Engine, clock: str) -> str:
    """A UTC time as the previous release stored it (SQLite: naive UTC text; PostgreSQL: timestamptz)."""
    return f"2026-11-{clock}.000000" + ("+00:00" if engine.dialect.name == "postgresql" else "")


def fill_previous_release(engine: Engine) -> None:
    """Rows in every kind of table 0006 had, written with that schema's columns only."""
    t = {k: at(engine, v) for k, v in {"c": "02 02:00:00", "v": "02 03:00:00", "x": "03 02:00:00"}.items()}
    report = (
        "INSERT INTO reports (code, category, agency, kecamatan, kelurahan, title, description, address,"
        " lat, lon, privacy, contact_name, contact_phone, contact_email, source, status, resolution,"
        " created_at, updated_at, verify_due, verified_at, closed_at, verify_late, respond_late, feedback,"
        " feedback_at) VALUES (:code, 'perencanaan_pembangunan', NULL, 'binjai_kota', 'tangsi', :title,"
        " 'Air meluap ke jalan.', 'Jl. Sudirman', 3.6, 98.48, :privacy, 'Siti Aminah', '081234567890',"
        " 'siti@example.id', 'web', :status, :resolution, :c, :c, :x, :v, :closed, :late, false,"
        " :feedback, :closed)"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, display_name, password_hash, role, agency, active, created_at)"
                " VALUES ('admin.lama', 'Admin lama', :hash, 'admin', NULL, true, :c)"
            ),
            {"hash": hash_password(ADMIN_PASSWORD), "c": t["c"]},
        )
        for code, privacy, status in (
            (PUBLIC, "public", "closed"),
            (CONFIDENTIAL, "confidential", "submitted"),
        ):
            closed = status == "closed"
            conn.execute(
                text(report),
                {
                    "code": code,
                    "title": f"Laporan {privacy}",
                    "privacy": privacy,
                    "status": status,
                    "resolution": "resolved_direct" if closed else None,
                    "closed": t["x"] if closed else None,
                    "late": closed,
                    "feedback": "solved" if closed else None,
                    **t,
                },
            )
        conn.execute(
            text(
                "INSERT INTO photos (report_id, filename, width, height, size_bytes, created_at)"
                " SELECT id, :name, 64, 48, 600, :c FROM reports WHERE code = :code"
            ),
            {"name": PHOTO, "c": t["c"], "code": PUBLIC},
        )
        conn.execute(
            text(
                "INSERT INTO report_entries (report_id, kind, at, actor_id, actor_label, body)"
                " SELECT r.id, 'closed', :x, u.id, 'admin', 'Sudah dibersihkan' FROM reports r, users u"
                " WHERE r.code = :code"
            ),
            {"x": t["x"], "code": PUBLIC},
        )
        conn.execute(
            text(
                "INSERT INTO notifications (code, event, created_at, next_at, attempts, error)"
                " VALUES (:code, 'closed', :x, :x, 0, '')"
            ),
            {"code": PUBLIC, "x": t["x"]},
        )
        conn.execute(
            text(
                'INSERT INTO command_audit ("transaction", at, user_id, username, action, device, command,'
                " status, error, readback, finished_at) SELECT 'tx-lama-1', :c, id, username,"
                " 'Lampu A nyala', 'lights_a', '{\"relay_1\": \"ON\"}', 'ok', '', '{}', :c FROM users"
            ),
            {"c": t["c"]},
        )


def every_row(engine: Engine, schema: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of ``schema``, only the columns that schema had, in key order."""
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for name, table in schema.tables.items()
            if name != "alembic_version"
        }


def test_a_previous_release_database_upgrades_with_its_data(empty_db_url: str, tmp_path: Path) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, PREVIOUS_RELEASE)
    previous = MetaData()
    previous.reflect(engine)
    fill_previous_release(engine)
    before = every_row(engine, previous)
    assert all(before[t] for t in ("users", "reports", "photos", "report_entries", "notifications"))

    upgrade(engine)
    assert current_revision(engine) != PREVIOUS_RELEASE
    assert every_row(engine, previous) == before
    engine.dispose()

    settings = make_settings(empty_db_url, tmp_path)
    settings.media_dir.mkdir(mode=0o700)
    photo = jpeg()
    (settings.media_dir / PHOTO).write_bytes(photo)
    app = create_app(settings, clock=FakeClock().now)
    with TestClient(app) as client:
        # the report and its photo read through the upgraded database
        page = client.get(f"/laporan/{PUBLIC}")
        assert page.status_code == 200 and "Laporan public" in page.text
        assert client.get(f"/foto/{PHOTO}").content == photo
        # the reporter's browser remembered the confidential report: it claims a key once (0007)
        client.cookies.set("bcc_mine", CONFIDENTIAL)
        r = client.post(
            f"/laporan/{CONFIDENTIAL}/info",
            data={"csrf_token": csrf(client), "body": "Tambahan setelah pembaruan"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        # the admin of the previous release logs in and is asked to enrol a second factor (0008)
        r = client.post(
            "/staf/masuk",
            data={
                "csrf_token": csrf(client, "/staf/masuk"),
                "username": "admin.lama",
                "password": ADMIN_PASSWORD,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/staf/2fa")
        with runtime_of(app).sessions() as db:
            claimed = db.scalar(select(Report).where(Report.code == CONFIDENTIAL))
            admin = db.scalar(select(User).where(User.username == "admin.lama"))
            assert claimed is not None and claimed.secret_hash is not None
            assert [e.body for e in claimed.entries] == ["Tambahan setelah pembaruan"]
            assert admin is not None and admin.totp_secret is None and admin.totp_last_step == 0


def test_a_database_of_a_newer_release_is_refused_in_one_line(empty_db_url: str, tmp_path: Path) -> None:
    """What an older release does with a database a newer one migrated: stop, say so, change nothing
    (a downgrade is restoring the backup taken before the upgrade)."""
    engine = make_engine(empty_db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    env = {
        **os.environ,
        "BCC_PORTAL_DATABASE_URL": empty_db_url,
        "BCC_PORTAL_SECRET_KEY": "k" * 16 + os.urandom(16).hex(),
        "BCC_PORTAL_MEDIA_DIR": str(tmp_path / "media"),
    }
    for command, argv in (("portal", ["portal", "migrate"]), ("admin", ["admin", "list-users"])):
        done = subprocess.run(
            [sys.executable, "-m", "bcc", *argv], capture_output=True, text=True, env=env, check=False
        )
        last = done.stderr.splitlines()[-1]  # after Alembic's own INFO lines, no traceback
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert last.startswith(f"bcc {command}: the database is at migration 0099, newer than this release")
        assert "restore the backup taken before the upgrade" in last
    engine = make_engine(empty_db_url)
    assert current_revision(engine) == "0099"
    engine.dispose()
