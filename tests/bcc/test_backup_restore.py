"""The restore drill: fill the portal (reports with photos, a wall kiosk token) and InfluxDB (telemetry
through the recorder, some of it still in the recorder's spool), back up, wipe everything, restore, and
compare every report row, every photo's bytes and every point. Plus the refusals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from bcc.backup import database
from bcc.backup.make import make_backup
from bcc.backup.manifest import BackupError
from bcc.backup.restore import restore_backup
from bcc.cli import build_parser
from bcc_common.net import free_port
from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.config import load_recorder_config
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from portal.config import Settings
from portal.db import make_engine, upgrade
from portal.main import create_app
from portal.models import Base, Photo, Report
from portal.runtime import runtime_of
from portal.services.wall import KioskStore
from tests.support.influx import influxql, recorder_site_file
from tests.support.portal import owned_by_new_role, recreate_postgres_database
from tests.support.portal_app import FakeClock, jpeg, make_settings, report_form, submit
from tests.support.recorder import distinct_times, meter_state, publish_as_gateway, rows
from tests.support.wait import eventually, eventually_sync

LOADED = load_site(DEMO_SITE)


def cli(*argv: str) -> argparse.Namespace:
    return build_parser(list(argv)).parse_args(list(argv))


def portal_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The portal's own environment, as its service has it (``bcc backup`` reads the same)."""
    monkeypatch.setenv("BCC_PORTAL_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("BCC_PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BCC_PORTAL_MEDIA_DIR", str(settings.media_dir))


@dataclass
class Filled:
    codes: list[str]
    kiosk_token: str


def fill_portal(settings: Settings) -> Filled:
    """Three reports with photos of different sizes through the public form, and a kiosk token."""
    app = create_app(settings, clock=FakeClock().now)
    with TestClient(app) as client:
        codes = [
            submit(client, [jpeg(64 + i, 48), jpeg(80, 60 + i)], title=f"Laporan nomor {i}") for i in range(3)
        ]
        runtime = runtime_of(app)
        token = runtime.wall.kiosk.issue("PC dinding", "admin", runtime.clock())
    return Filled(codes, token)


def database_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every portal table, in primary-key order."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def folder(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def influx_everything(url: str) -> dict[str, Any]:
    """Every point of every retention policy of ``bcc``, the policies and the continuous queries."""
    policies = influxql(url, "SHOW RETENTION POLICIES")[0]["values"]
    points = {rp[0]: influxql(url, f'SELECT * FROM "{rp[0]}"./.*/ GROUP BY *') for rp in policies}
    cqs = [s for s in influxql(url, "SHOW CONTINUOUS QUERIES") if s["name"] == "bcc"]
    return {"policies": policies, "points": points, "cqs": cqs}


def wipe_portal(settings: Settings, *others: Path) -> None:
    """Delete the portal's database (PostgreSQL: dropped and created empty) and media, and ``others``."""
    for path in others:
        path.unlink()
    url = settings.database_url
    if url.startswith("sqlite"):
        db = Path(url.removeprefix("sqlite:///"))
        for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            f.unlink(missing_ok=True)
    else:
        recreate_postgres_database(url)
    shutil.rmtree(settings.media_dir)


async def wipe_influxd(influxd: InfluxdProcess) -> None:
    await influxd.stop()
    for sub in ("meta", "data", "wal"):
        shutil.rmtree(influxd.workdir / sub)
    await influxd.start()  # same HTTP port, nothing in it


def meter(i: int) -> tuple[str, bytes]:
    return "bcc/meter_main", meter_state(i)


@pytest.fixture
def portal_settings(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A migrated portal database in the portal's environment; on PostgreSQL it belongs to a role of its
    own with a password (no superuser: what ``pg_restore`` must manage with in production)."""
    with contextlib.ExitStack() as stack:
        url = empty_db_url
        if url.startswith("postgresql"):
            url = stack.enter_context(owned_by_new_role(url))
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        settings = make_settings(url, tmp_path)
        portal_env(monkeypatch, settings)
        yield settings


async def test_restore_drill_everything_back_identical(
    portal_settings: Settings,
    mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = portal_settings
    filled = await asyncio.to_thread(fill_portal, settings)
    site = recorder_site_file(LOADED, mosquitto, influxd, tmp_path, backoff_max_s=0.2)
    monkeypatch.setenv("BCC_MQTT_PASSWORD", mosquitto.password("recorder"))
    recorder = load_recorder_config(site)
    written, spooled = 200, 50
    async with running_recorder(recorder) as rec:
        await publish_as_gateway(mosquitto, meter, written, rate_per_s=2000)
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") == written, timeout=20)
        # InfluxDB goes away: the next states wait in the spool, and are backed up from there
        await influxd.stop()
        await publish_as_gateway(mosquitto, lambda i: meter(written + i), spooled, rate_per_s=2000)
        await eventually(lambda: rec.spool.depth >= spooled * 12, timeout=20, what="states spooled")
    await influxd.start()
    extra_config = tmp_path / "etc" / "portal.env"
    extra_config.parent.mkdir()
    extra_config.write_text("BCC_PORTAL_PUBLIC_URL=https://lapor.example.id\n", encoding="utf-8")
    extra_config.chmod(0o640)

    rows_before = database_rows(settings.database_url)
    media_before = folder(settings.media_dir)
    influx_before = influx_everything(influxd.url)
    assert len(rows_before["reports"]) == 3 and len(rows_before["photos"]) == 6
    assert len([n for n in media_before if n.endswith(".jpg")]) == 6 and "wall_kiosk.json" in media_before

    out = tmp_path / "backup"
    recorder_args = ["--recorder-site", str(site), "--influx-rpc", influxd.rpc_address]
    backup_args = cli("backup", "--out", str(out), *recorder_args, "--config", str(extra_config))
    parts = await asyncio.to_thread(make_backup, backup_args)
    assert [p.name for p in parts] == ["portal-db", "media", "recorder-spool", "influxdb", "config"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["migration"]["database"] == manifest["migration"]["head"]
    assert "influxd" in manifest["tools"] and manifest["parts"][1]["info"]["kiosk_registry"] is True
    assert manifest["portal"]["media_dir"] == str(settings.media_dir)
    # the packaged demo site and scenes the portal uses here come with the release, not the backup
    assert set(manifest["parts"][-1]["info"]["files"]) == {str(site.resolve()), str(extra_config.resolve())}
    assert manifest["portal"]["max_photos"] == settings.max_photos
    if settings.database_url.startswith("postgresql"):  # the role's password is not in the manifest
        password = settings.database_url.split(":")[2].split("@")[0]
        assert password not in (out / "manifest.json").read_text()
    assert (
        oct(
            (out / "portal.pgdump" if "postgresql" in settings.database_url else out / "portal.sqlite3")
            .stat()
            .st_mode
            & 0o777
        )
        == "0o600"
    )

    # everything gone: database, photos and kiosk registry, InfluxDB's data, the spool, a config file
    await asyncio.to_thread(wipe_portal, settings, Path(recorder.influx.spool_path), extra_config)
    await wipe_influxd(influxd)

    # influxd's backup service listens on a new port after each start
    recorder_args = ["--recorder-site", str(site), "--influx-rpc", influxd.rpc_address]
    lines = await asyncio.to_thread(restore_backup, cli("restore", str(out), *recorder_args))
    assert any(line.startswith("InfluxDB") for line in lines)
    # reading the backup left nothing beside it (its SQLite copies need no -wal or -shm: read-only media)
    assert sorted(f.name for f in out.iterdir()) == sorted(["manifest.json", *(p.file for p in parts)])

    assert database_rows(settings.database_url) == rows_before
    assert folder(settings.media_dir) == media_before
    assert influx_everything(influxd.url) == influx_before
    assert extra_config.read_text() == "BCC_PORTAL_PUBLIC_URL=https://lapor.example.id\n"
    assert extra_config.stat().st_mode & 0o777 == 0o640
    store = KioskStore(settings.media_dir / "wall_kiosk.json", settings.secret_key.get_secret_value())
    assert store.check(filled.kiosk_token) is not None

    # the same backup again: every target is taken now, InfluxDB's database included; forced, the same
    again = cli("restore", str(out), *recorder_args)
    with pytest.raises(BackupError) as refused:
        await asyncio.to_thread(restore_backup, again)
    for target in ("portal database", "media folder", "recorder spool", "InfluxDB database 'bcc'"):
        assert target in str(refused.value)
    await asyncio.to_thread(restore_backup, cli("restore", str(out), *recorder_args, "--force"))
    assert database_rows(settings.database_url) == rows_before
    assert influx_everything(influxd.url) == influx_before
    # the spool's states reach InfluxDB once the recorder runs again: none lost, none doubled
    async with running_recorder(load_recorder_config(site)) as rec:
        await rec.drain(20)
    assert rows(influxd.url, "sdm630", "power_total") == written + spooled
    # the restored portal serves the reports and their photos
    await asyncio.to_thread(check_portal_serves, settings, filled.codes, media_before)


def check_portal_serves(settings: Settings, codes: list[str], media: dict[str, bytes]) -> None:
    app = create_app(settings, clock=FakeClock().now)
    with TestClient(app) as client:
        with runtime_of(app).sessions() as db:
            photos = db.scalars(select(Photo).join(Report).where(Report.code.in_(codes))).all()
        assert len(photos) == 6
        for photo in photos:
            # staff-only until verified is not a thing for public reports: the photo route serves them
            r = client.get(f"/foto/{photo.filename}")
            assert r.status_code == 200 and r.content == media[photo.filename]
        assert submit(client, [jpeg()], **report_form(title="Setelah pemulihan"))  # writable again


# ---- refusals ------------------------------------------------------------------------------------
@pytest.fixture
def small_backup(portal_settings: Settings) -> Iterator[tuple[Settings, Path]]:
    """A backup of a portal (each backend) with one report and its photo (portal part only)."""
    settings = portal_settings
    with TestClient(create_app(settings, clock=FakeClock().now)) as client:
        submit(client, [jpeg()])
    out = settings.media_dir.parent / "backup"
    make_backup(cli("backup", "--out", str(out)))
    yield settings, out


def test_restore_refuses_a_non_empty_target_unless_forced(small_backup: tuple[Settings, Path]) -> None:
    settings, out = small_backup
    before = database_rows(settings.database_url)
    with pytest.raises(BackupError, match=r"^not empty: portal database .*; media folder .* \(--force"):
        restore_backup(cli("restore", str(out)))
    # forced: the target's newer report is gone, the backup's state is back
    with TestClient(create_app(settings, clock=FakeClock().now)) as client:
        submit(client, [jpeg()])
    assert len(database_rows(settings.database_url)["reports"]) == 2
    restore_backup(cli("restore", str(out), "--force"))
    assert database_rows(settings.database_url) == before
    assert len(list(settings.media_dir.glob("*.jpg"))) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_restore_refuses_a_damaged_backup_before_touching_anything(
    small_backup: tuple[Settings, Path], damage: str
) -> None:
    settings, out = small_backup
    wipe_portal(settings)
    media = out / "media.tar"
    if damage == "flip":
        data = bytearray(media.read_bytes())
        data[len(data) // 3] ^= 0x01
        media.write_bytes(bytes(data))
        expected = r"is corrupt: part media \(media.tar\): SHA-256 differs from the manifest"
    elif damage == "truncate":
        media.write_bytes(media.read_bytes()[:-512])
        expected = r"is corrupt: part media \(media.tar\): \d+ bytes, the manifest says \d+"
    elif damage == "delete":
        db = next(out.glob("portal.*"))
        db.unlink()
        expected = rf"is corrupt: part portal-db \({db.name}\): file missing"
    else:
        (out / "manifest.json").unlink()  # what a backup that stopped halfway leaves
        expected = r"no manifest.json: the backup is incomplete"
    with pytest.raises(BackupError, match=expected):
        restore_backup(cli("restore", str(out)))
    assert not settings.media_dir.exists()
    assert database.is_empty(settings.database_url)


def test_restore_refuses_a_backup_from_a_newer_release(small_backup: tuple[Settings, Path]) -> None:
    settings, out = small_backup
    wipe_portal(settings)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["parts"][0]["info"]["revision"] = "0099"
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="database is at migration 0099, newer than this release"):
        restore_backup(cli("restore", str(out)))


def test_backup_refuses_a_used_folder(small_backup: tuple[Settings, Path]) -> None:
    _settings, out = small_backup
    with pytest.raises(BackupError, match="is not empty: back up into a new folder"):
        make_backup(cli("backup", "--out", str(out)))


def test_the_command_line_says_one_line_and_exits_2(
    small_backup: tuple[Settings, Path], tmp_path: Path
) -> None:
    _settings, out = small_backup
    (out / "media.tar").write_bytes(b"not the archive")
    env = {**os.environ, "BCC_PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "bcc", "restore", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("bcc restore: backup ")
    assert "part media (media.tar)" in done.stderr
    assert not (tmp_path / "other.db").exists()


def test_secrets_only_on_request_and_back_as_files_the_services_read(
    small_backup: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, plain = small_backup
    key = settings.secret_key.get_secret_value().encode()
    assert all(key not in f.read_bytes() for f in plain.iterdir())  # no secret without --with-secrets
    config = tmp_path / "etc" / "bcc.conf"
    config.parent.mkdir()
    config.write_text("setting = 1\n", encoding="utf-8")
    out = tmp_path / "with-secrets"
    done = subprocess.run(
        [sys.executable, "-m", "bcc", "backup", "--out", str(out), "--with-secrets", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"backup complete: {out} (4 parts")
    assert (out / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert out.stat().st_mode & 0o777 == 0o700

    wipe_portal(settings)
    config.write_text("setting = 2\n", encoding="utf-8")  # changed since the backup
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "BCC_PORTAL_SECRET_KEY").write_text("another key\n", encoding="utf-8")
    with pytest.raises(BackupError) as refused:
        restore_backup(cli("restore", str(out), "--secrets-dir", str(secrets_dir)))
    assert f"configuration file {config} (differs)" in str(refused.value)
    assert f"secret file {secrets_dir / 'BCC_PORTAL_SECRET_KEY'} (differs)" in str(refused.value)
    assert database.is_empty(settings.database_url)  # nothing written

    config.unlink()
    (secrets_dir / "BCC_PORTAL_SECRET_KEY").unlink()
    lines = restore_backup(cli("restore", str(out), "--secrets-dir", str(secrets_dir)))
    assert f"secrets: 2 files in {secrets_dir} (point each service's VAR_FILE there)" in lines
    assert config.read_text(encoding="utf-8") == "setting = 1\n"
    written = secrets_dir / "BCC_PORTAL_SECRET_KEY"
    assert written.stat().st_mode & 0o777 == 0o600
    assert Settings.from_env({"BCC_PORTAL_SECRET_KEY_FILE": str(written)}).secret_key == settings.secret_key
    url = (secrets_dir / "BCC_PORTAL_DATABASE_URL").read_text(encoding="utf-8").strip()
    assert url == settings.database_url


def test_a_wrong_influx_rpc_address_fails_at_once(tmp_path: Path) -> None:
    """influxd backup alone would retry a refused connection for minutes."""
    site = tmp_path / "site.yaml"
    raw = LOADED.site.model_dump(mode="json", exclude_none=True)
    raw["influxdb"] = {"spool_path": str(tmp_path / "no-spool.sqlite3")}
    site.write_text(yaml.safe_dump(raw), encoding="utf-8")
    wrong = f"127.0.0.1:{free_port()}"
    args = cli(
        "backup",
        "--out",
        str(tmp_path / "b"),
        "--no-portal",
        "--recorder-site",
        str(site),
        "--influx-rpc",
        wrong,
    )
    with pytest.raises(BackupError, match=f"influxd's backup service at {wrong} does not answer"):
        make_backup(args)
    assert not (tmp_path / "b" / "manifest.json").exists()


def influx_as(url: str, who: tuple[str, str] | None, q: str) -> dict[str, Any]:
    """One InfluxQL statement as ``who`` (user, password); the first result (with its error, if any)."""
    r = httpx.post(f"{url}/query", params={"q": q, "db": "bcc"}, auth=who, timeout=10)
    result: dict[str, Any] = r.json().get("results", [r.json()])[0]
    return result


def fill_as_admin(url: str, admin: tuple[str, str]) -> None:
    """The admin, the database, a recorder account that may only write, and 100 points."""
    for q in (
        f"CREATE USER admin WITH PASSWORD '{admin[1]}' WITH ALL PRIVILEGES",
        "CREATE DATABASE bcc",
        "CREATE USER rec WITH PASSWORD 'rec-password'",
        "GRANT WRITE ON bcc TO rec",
    ):
        assert "error" not in influx_as(url, admin, q), q
    lines = "\n".join(f"sdm630,device=meter_main power_total={i}.5 {1_700_000_000 + i}" for i in range(100))
    r = httpx.post(f"{url}/write", params={"db": "bcc", "precision": "s"}, content=lines, auth=admin)
    assert r.status_code == 204, r.text


async def test_restore_with_influxdb_authentication_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mosquitto: MosquittoProcess
) -> None:
    """The recorder's account may write, not administer: a forced restore is refused before anything
    is written; after an admin's drop the data comes back while its continuous query and the grants wait
    for the admin's provisioning (as documented); the backup service finds a database the account does
    not see."""
    influxd = InfluxdProcess(tmp_path / "influx", auth_enabled=True)
    await influxd.start()
    try:
        admin = ("admin", "admin-" + os.urandom(8).hex())
        await asyncio.to_thread(fill_as_admin, influxd.url, admin)
        site = recorder_site_file(LOADED, mosquitto, influxd, tmp_path, auth="basic", username="rec")
        monkeypatch.setenv("BCC_INFLUX_PASSWORD", "rec-password")
        rpc = ["--recorder-site", str(site), "--influx-rpc", influxd.rpc_address]
        out = tmp_path / "backup"
        await asyncio.to_thread(make_backup, cli("backup", "--out", str(out), "--no-portal", *rpc))
        restore = cli("restore", str(out), *rpc)
        forced = cli("restore", str(out), *rpc, "--force")
        with pytest.raises(BackupError, match=r"^not empty: InfluxDB database 'bcc'"):
            await asyncio.to_thread(restore_backup, restore)
        site.write_text(site.read_text() + "# changed\n")  # a configuration file the restore would put back
        with pytest.raises(BackupError, match=r"cannot drop InfluxDB database 'bcc' .*requires admin"):
            await asyncio.to_thread(restore_backup, forced)
        assert site.read_text().endswith("# changed\n")  # nothing written

        assert "error" not in await asyncio.to_thread(influx_as, influxd.url, admin, "DROP DATABASE bcc")
        with pytest.raises(BackupError, match="InfluxDB's data is restored but its continuous query is not"):
            await asyncio.to_thread(restore_backup, forced)
        q = "SELECT count(power_total) FROM autogen.sdm630"
        count = await asyncio.to_thread(influx_as, influxd.url, admin, q)
        assert count["series"][0]["values"][0][1] == 100
        grants = await asyncio.to_thread(influx_as, influxd.url, admin, "SHOW GRANTS FOR rec")
        assert "values" not in grants["series"][0]  # dropping the database dropped rec's grant
        # rec no longer sees the database, the backup service does: a second restore is refused
        seen = await asyncio.to_thread(influx_as, influxd.url, ("rec", "rec-password"), "SHOW DATABASES")
        assert "values" not in seen["series"][0]
        with pytest.raises(BackupError, match=r"^not empty: InfluxDB database 'bcc'"):
            await asyncio.to_thread(restore_backup, restore)
    finally:
        await influxd.stop()


def test_a_backup_taken_while_citizens_submit_restores_every_photo_its_rows_name(
    portal_settings: Settings,
) -> None:
    """Online consistency: reports with photos keep arriving during the backup; every photo row of the
    restored database has its file, byte-sized as recorded (the database is dumped before the media)."""
    settings = portal_settings
    stop = threading.Event()
    submitted: list[str] = []

    def citizens() -> None:
        with TestClient(create_app(settings, clock=FakeClock().now)) as client:
            while not stop.is_set():
                submitted.append(submit(client, [jpeg(64 + len(submitted) % 50, 48)]))

    worker = threading.Thread(target=citizens)
    worker.start()
    try:
        eventually_sync(lambda: len(submitted) >= 5, timeout=30, what="submissions under way")
        before = len(submitted)
        out = settings.media_dir.parent / "backup"
        make_backup(cli("backup", "--out", str(out)))
        during = len(submitted)
        eventually_sync(lambda: len(submitted) >= during + 3, timeout=30, what="submissions after the backup")
    finally:
        stop.set()
        worker.join(30)
    wipe_portal(settings)
    restore_backup(cli("restore", str(out)))
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        photos = [(p.filename, p.size_bytes) for p in conn.execute(select(Photo))]
        reports = conn.execute(select(Report.code)).scalars().all()
    engine.dispose()
    assert before <= len(reports) <= during + 1  # what was committed when the dump began
    assert len(photos) == len(reports)
    for name, size in photos:
        assert (settings.media_dir / name).stat().st_size == size


async def test_a_backup_taken_while_the_recorder_writes_loses_no_point(
    mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Online consistency of spool and InfluxDB: the backup starts as the recorder begins to empty a
    backlog of 3,000 states into InfluxDB (back after an outage); every state is restored exactly once,
    because the spool is copied before InfluxDB (the other way round, the states written in between are
    in neither copy: this test then fails)."""
    site = recorder_site_file(LOADED, mosquitto, influxd, tmp_path)
    monkeypatch.setenv("BCC_MQTT_PASSWORD", mosquitto.password("recorder"))
    out = tmp_path / "backup"
    written, backlog = 200, 3000
    async with running_recorder(load_recorder_config(site)) as rec:
        await publish_as_gateway(mosquitto, meter, written, rate_per_s=2000)
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") == written, timeout=20)
        await influxd.stop()
        await publish_as_gateway(mosquitto, lambda i: meter(written + i), backlog, rate_per_s=5000)
        await eventually(lambda: rec.intake.messages >= written + backlog, timeout=30, what="backlog spooled")
        await influxd.start()  # the writer retries within backoff_max_s and starts emptying the spool
        args = cli(
            "backup",
            "--out",
            str(out),
            "--no-portal",
            "--recorder-site",
            str(site),
            "--influx-rpc",
            influxd.rpc_address,
        )
        await asyncio.to_thread(make_backup, args)
        await rec.drain(30)
    await asyncio.to_thread(Path(tmp_path / "spool.sqlite3").unlink)
    await wipe_influxd(influxd)
    restore = ["restore", str(out), "--recorder-site", str(site), "--influx-rpc", influxd.rpc_address]
    await asyncio.to_thread(restore_backup, cli(*restore))
    async with running_recorder(load_recorder_config(site)) as rec:
        await rec.drain(30)
    assert rows(influxd.url, "sdm630", "power_total") == written + backlog
    assert distinct_times(influxd.url, "sdm630", "power_total") == written + backlog
