"""``bcc influx provision`` against a real influxd (Debian 1.6.7) with authentication on, and the recorder
running with the write-only user it creates."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.config import load_recorder_config
from iot_gateway.recorder.influx_admin import plan, provision, quote_string
from iot_gateway.recorder.influxd import InfluxdProcess, find_influxd
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from tests.support.influx import influx_as, recorder_site_file
from tests.support.paths import ROOT
from tests.support.recorder import meter_state, per_device, publish_as_gateway
from tests.support.wait import eventually

LOADED = per_device(load_site(DEMO_SITE))
ADMIN = ("root_admin", "admin-" + os.urandom(8).hex())
RECORDER = ("bcc_recorder", "rec-" + os.urandom(8).hex() + "'\\x")  # quote and backslash: escaped
GRAFANA = ("grafana", "graf-" + os.urandom(8).hex())


@pytest.fixture
async def influxd_no_user(tmp_path: Path) -> AsyncIterator[InfluxdProcess]:
    """influxd with ``auth-enabled = true`` and no user yet (as Debian installs it, with auth turned on)."""
    if find_influxd() is None:
        pytest.fail("influxd not installed: run scripts/sysdeps.sh (Debian package: influxdb)")
    server = InfluxdProcess(tmp_path / "influxdb", auth_enabled=True)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def influxd_auth(influxd_no_user: InfluxdProcess) -> InfluxdProcess:
    """... and its first user, which 1.6.7 requires to be an admin."""
    q = f"CREATE USER {ADMIN[0]} WITH PASSWORD '{ADMIN[1]}' WITH ALL PRIVILEGES"
    assert "error" not in await asyncio.to_thread(influx_as, influxd_no_user.url, None, q)
    return influxd_no_user


def site_file(broker: MosquittoProcess, influx: InfluxdProcess, tmp_path: Path) -> Path:
    secret = tmp_path / "influx-recorder"
    secret.write_text(RECORDER[1] + "\n", encoding="utf-8")
    return recorder_site_file(
        LOADED,
        broker,
        influx,
        tmp_path,
        auth="basic",
        username=RECORDER[0],
        password_file=str(secret),
        mqtt_username=broker.account("recorder"),
    )


def admin_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCC_")}
    env.update(
        BCC_INFLUX_ADMIN_USER=ADMIN[0],
        BCC_INFLUX_ADMIN_PASSWORD=ADMIN[1],
        BCC_INFLUX_GRAFANA_PASSWORD=GRAFANA[1],
    )
    env.update(overrides)
    return env


async def bcc_provision(site: Path, env: dict[str, str], *extra: str) -> tuple[int, str, str]:
    """``bcc influx provision --site SITE`` as its own process: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bcc", "influx", "provision", "--site", str(site), *extra),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def state(url: str) -> dict[str, Any]:
    """Everything the provisioning manages, as the admin sees it."""
    queries = [
        "SHOW DATABASES",
        "SHOW USERS",
        "SHOW RETENTION POLICIES ON bcc",
        "SHOW CONTINUOUS QUERIES",
        f"SHOW GRANTS FOR {RECORDER[0]}",
        f"SHOW GRANTS FOR {GRAFANA[0]}",
    ]
    return {q: influx_as(url, ADMIN, q) for q in queries}


def write(url: str, who: tuple[str, str]) -> httpx.Response:
    """One point, stamped now by the server (within the raw retention policy)."""
    return httpx.post(f"{url}/write", params={"db": "bcc"}, content=b"probe v=1", auth=who)


async def test_provision_twice_and_each_user_has_only_its_privilege(
    mosquitto: MosquittoProcess, influxd_auth: InfluxdProcess, tmp_path: Path
) -> None:
    url = influxd_auth.url
    site = site_file(mosquitto, influxd_auth, tmp_path)
    code, out, err = await bcc_provision(site, admin_env())
    assert code == 0, err
    assert f"user {RECORDER[0]} (WRITE on bcc): created" in out
    assert f"user {GRAFANA[0]} (READ on bcc): created" in out
    first = await asyncio.to_thread(state, url)
    rps = {row[0]: row[1] for row in first["SHOW RETENTION POLICIES ON bcc"]["series"][0]["values"]}
    assert rps == {"autogen": "0s", "raw": "2160h0m0s", "rollup": "17520h0m0s", "reports": "0s"}
    cqs = {s["name"]: s.get("values", []) for s in first["SHOW CONTINUOUS QUERIES"]["series"]}
    assert [row[0] for row in cqs["bcc"]] == ["cq_rollup"]
    assert first[f"SHOW GRANTS FOR {RECORDER[0]}"]["series"][0]["values"] == [["bcc", "WRITE"]]
    assert first[f"SHOW GRANTS FOR {GRAFANA[0]}"]["series"][0]["values"] == [["bcc", "READ"]]
    users = dict(first["SHOW USERS"]["series"][0]["values"])
    assert users == {ADMIN[0]: True, RECORDER[0]: False, GRAFANA[0]: False}

    code, out, err = await bcc_provision(site, admin_env())
    assert code == 0, err
    assert "error" not in err and "warning" not in err
    assert f"user {RECORDER[0]} (WRITE on bcc): unchanged" in out
    assert f"user {GRAFANA[0]} (READ on bcc): unchanged" in out
    assert await asyncio.to_thread(state, url) == first

    # Grafana reads, and can neither write nor drop
    assert (await asyncio.to_thread(write, url, ADMIN)).status_code == 204
    seen = await asyncio.to_thread(influx_as, url, GRAFANA, 'SELECT count(v) FROM "raw"."probe"')
    assert seen["series"][0]["values"][0][1] == 1
    assert (await asyncio.to_thread(write, url, GRAFANA)).status_code == 403
    for q in ("DROP DATABASE bcc", "DROP MEASUREMENT probe", 'DROP RETENTION POLICY "raw" ON bcc'):
        assert "not authorized" in (await asyncio.to_thread(influx_as, url, GRAFANA, q))["error"], q
    # the recorder writes, and can neither read nor drop
    assert (await asyncio.to_thread(write, url, RECORDER)).status_code == 204
    for q in ('SELECT * FROM "raw"."probe"', "DROP DATABASE bcc", "DROP MEASUREMENT probe"):
        assert "not authorized" in (await asyncio.to_thread(influx_as, url, RECORDER, q))["error"], q

    # a grant widened by hand and an admin flag are put back; a changed secret becomes the password
    for q in (f"GRANT ALL ON bcc TO {GRAFANA[0]}", f"GRANT ALL PRIVILEGES TO {RECORDER[0]}"):
        assert "error" not in await asyncio.to_thread(influx_as, url, ADMIN, q)
    code, out, err = await bcc_provision(site, admin_env(BCC_INFLUX_GRAFANA_PASSWORD="new-" + GRAFANA[1]))
    assert code == 0, err
    assert f"user {RECORDER[0]} (WRITE on bcc): admin rights revoked" in out
    assert f"user {GRAFANA[0]} (READ on bcc): password set, granted READ on bcc (was ALL PRIVILEGES)" in out
    after = await asyncio.to_thread(state, url)
    assert {k: v for k, v in after.items() if k != f"SHOW GRANTS FOR {GRAFANA[0]}"} == {
        k: v for k, v in first.items() if k != f"SHOW GRANTS FOR {GRAFANA[0]}"
    }
    assert after[f"SHOW GRANTS FOR {GRAFANA[0]}"]["series"][0]["values"] == [["bcc", "READ"]]
    assert (await asyncio.to_thread(write, url, ("grafana", "new-" + GRAFANA[1]))).status_code == 403


async def test_wrong_admin_password_is_one_line_exit_2(
    mosquitto: MosquittoProcess, influxd_auth: InfluxdProcess, tmp_path: Path
) -> None:
    site = site_file(mosquitto, influxd_auth, tmp_path)
    code, out, err = await bcc_provision(site, admin_env(BCC_INFLUX_ADMIN_PASSWORD="wrong"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"refused the admin user {ADMIN[0]!r}: wrong user or password" in err
    users = influx_as(influxd_auth.url, ADMIN, "SHOW USERS")["series"][0]["values"]
    assert users == [[ADMIN[0], True]]  # nothing created

    env = admin_env()
    del env["BCC_INFLUX_GRAFANA_PASSWORD"]
    code, out, err = await bcc_provision(site, env)
    missing = "BCC_INFLUX_GRAFANA_PASSWORD or BCC_INFLUX_GRAFANA_PASSWORD_FILE is not set (no default)"
    assert (code, err) == (2, f"bcc influx provision: {missing}\n")


async def test_no_admin_yet_or_not_an_admin_is_one_line_exit_2(
    mosquitto: MosquittoProcess, influxd_no_user: InfluxdProcess, tmp_path: Path
) -> None:
    server = influxd_no_user
    site = site_file(mosquitto, server, tmp_path)
    code, out, err = await bcc_provision(site, admin_env())
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert "has no admin yet: create it first" in err
    q = f"CREATE USER {ADMIN[0]} WITH PASSWORD '{ADMIN[1]}' WITH ALL PRIVILEGES"
    assert "error" not in await asyncio.to_thread(influx_as, server.url, None, q)
    q = "CREATE USER plain WITH PASSWORD 'plain-password'"
    assert "error" not in await asyncio.to_thread(influx_as, server.url, ADMIN, q)
    env = admin_env(BCC_INFLUX_ADMIN_USER="plain", BCC_INFLUX_ADMIN_PASSWORD="plain-password")
    code, out, err = await bcc_provision(site, env)
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert "'plain' is not an admin" in err


async def test_create_admin_on_a_server_without_users_then_provision(
    mosquitto: MosquittoProcess, influxd_no_user: InfluxdProcess, tmp_path: Path
) -> None:
    """What the installer's unit runs on a fresh InfluxDB: the admin first, then everything else."""
    server = influxd_no_user
    site = site_file(mosquitto, server, tmp_path)
    code, out, err = await bcc_provision(site, admin_env(), "--create-admin")
    assert code == 0, err
    assert out.splitlines()[0] == f"admin {ADMIN[0]} created (InfluxDB had no user)"
    users = await asyncio.to_thread(influx_as, server.url, ADMIN, "SHOW USERS")
    assert [ADMIN[0], True] in users["series"][0]["values"]
    code, out, err = await bcc_provision(site, admin_env(), "--create-admin")  # an admin exists now
    assert code == 0 and "created (InfluxDB had no user)" not in out, err
    assert write(server.url, RECORDER).status_code == 204


async def test_server_without_authentication_is_refused(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    code, out, err = await bcc_provision(site_file(mosquitto, influxd, tmp_path), admin_env())
    assert (code, out) == (2, "")
    assert err.startswith("bcc influx provision: InfluxDB at ") and "runs without authentication" in err


async def test_recorder_with_the_write_user_stores_points(
    mosquitto: MosquittoProcess, influxd_auth: InfluxdProcess, tmp_path: Path
) -> None:
    url = influxd_auth.url
    site = site_file(mosquitto, influxd_auth, tmp_path)
    config = load_recorder_config(site, {"BCC_MQTT_PASSWORD": mosquitto.password("recorder")})

    # before the provisioning: the database is missing, and the recorder says so (and stores nothing)
    q = f"CREATE USER {RECORDER[0]} WITH PASSWORD {quote_string(RECORDER[1])}"
    assert "error" not in influx_as(url, ADMIN, q)

    async def schema_missing() -> MutableMapping[str, Any]:
        with structlog.testing.capture_logs() as logs:
            async with running_recorder(config) as rec:
                await eventually(lambda: any(e["event"] == "influx_schema_missing" for e in logs), timeout=10)
                assert not rec.schema_ready
        missing = next(e for e in logs if e["event"] == "influx_schema_missing")
        assert "bcc influx provision" in missing["fix"]
        return missing

    assert (await schema_missing())["problems"] == ["database 'bcc' does not exist"]
    # the database without the retention policies (created by hand): each missing one is named
    for q in ("CREATE DATABASE bcc", f"GRANT WRITE ON bcc TO {RECORDER[0]}"):
        assert "error" not in influx_as(url, ADMIN, q)
    assert (await schema_missing())["problems"] == [
        f"retention policy {rp!r} does not exist on database 'bcc'" for rp in ("raw", "rollup", "reports")
    ]
    assert "series" not in influx_as(url, ADMIN, "SHOW MEASUREMENTS")  # the checks stored nothing

    lines = await provision(plan(load_site(site), admin_env(), str(site), None))
    assert lines[1] == f"user {RECORDER[0]} (WRITE on bcc): unchanged"

    total = 50
    with structlog.testing.capture_logs() as logs:
        async with running_recorder(config) as rec:
            await publish_as_gateway(mosquitto, lambda i: ("bcc/meter_main", meter_state(i)), total, 500)

            def stored() -> int:
                r = influx_as(url, ADMIN, 'SELECT count("power_total") FROM "raw"."sdm630"')
                return sum(int(row[1]) for s in r.get("series", []) for row in s["values"])

            await eventually(lambda: stored() == total, timeout=15)
            assert rec.schema_ready and not rec.may_create_schema
    events = [e["event"] for e in logs]
    assert "influx_schema_verified" in events and "influx_schema_missing" not in events
