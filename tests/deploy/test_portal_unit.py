"""bcc-portal.service's own command lines on a fresh PostgreSQL database, then nginx with the shipped
site in front of it: migrations on start, "started" only once the portal answers, and the TLS front's
redirect, HSTS and body limit against the real portal."""

from __future__ import annotations

import os
import re
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from bcc_common.net import free_port
from devices.loader import DEMO_SITE
from mosquitto import MosquittoProcess
from portal.config import Settings
from portal.db import make_engine
from tests.support.nginx import HOST, nginx_test, site_with_certificate
from tests.support.portal import new_postgres_database
from tests.support.units import PORTAL_ENV_EXAMPLE, VENV_BCC, Unit, environment_file, unit
from tests.support.wait import eventually_sync


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty PostgreSQL database (no tables): the unit's ExecStartPre must create them."""
    with new_postgres_database("bcc_portal_unit_") as url:
        yield url


def unit_environment(u: Unit, tmp: Path, database: str, broker: MosquittoProcess) -> dict[str, str]:
    """The unit's Environment= and the example EnvironmentFile, with this machine's database,
    broker, media folder and a generated session key as the credential."""
    creds = tmp / "credentials"
    creds.mkdir()
    for name in u.credentials():
        (creds / name).write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    (creds / "mqtt-portal").write_text(broker.password("portal") + "\n", encoding="utf-8")
    env = {**u.environment(credentials=str(creds)), **environment_file(PORTAL_ENV_EXAMPLE)}
    runtime = tmp / "run"  # systemd's RuntimeDirectory= (the workers' MQTT account locks)
    runtime.mkdir(mode=0o700)
    env.update(
        RUNTIME_DIRECTORY=str(runtime),
        BCC_PORTAL_DATABASE_URL=database,
        BCC_PORTAL_MEDIA_DIR=str(tmp / "media"),
        BCC_PORTAL_SITE_FILE=str(DEMO_SITE),
        BCC_PORTAL_MQTT_HOST=broker.host,
        BCC_PORTAL_MQTT_PORT=str(broker.port),
    )
    Settings.from_env(env)  # what the unit gives is a valid configuration
    return {**{k: v for k, v in os.environ.items() if not k.startswith("BCC_")}, **env}


def on_port(argv: list[str], port: int, metrics_port: int = 0) -> list[str]:
    """The unit's command line with its port 8000 (``--port 8000``, ``http://127.0.0.1:8000/``) and its
    metrics port 9103 moved."""
    text = [a.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for a in argv]
    for flag, shipped, moved in (("--port", "8000", port), ("--metrics-port", "9103", metrics_port)):
        i = text.index(flag) if flag in text else -1
        if i >= 0:
            assert text[i + 1] == shipped
            text[i + 1] = str(moved)
    return text


@dataclass
class Portal:
    port: int
    process: subprocess.Popen[bytes]


@pytest.fixture
def portal_unit(fresh_database: str, mosquitto: MosquittoProcess, tmp_path: Path) -> Iterator[Portal]:
    u = unit("bcc-portal.service")
    env = unit_environment(u, tmp_path, fresh_database, mosquitto)
    port = free_port()
    (pre,) = u.commands("ExecStartPre", bcc=VENV_BCC)
    (start,) = u.commands("ExecStart", bcc=VENV_BCC)
    (post,) = u.commands("ExecStartPost", bcc=VENV_BCC)
    migrate = subprocess.run(pre, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert migrate.returncode == 0, migrate.stderr
    engine = make_engine(fresh_database)
    assert "reports" in inspect(engine).get_table_names()
    engine.dispose()
    log = (tmp_path / "portal.log").open("wb")
    # as systemd does: the readiness poll runs once the main process is started, and decides "started"
    metrics_port = free_port()
    proc = subprocess.Popen(on_port(start, port, metrics_port), env=env, stdout=log, stderr=log)
    try:
        poll = subprocess.run(on_port(post, port), capture_output=True, text=True, timeout=90, check=False)
        assert poll.returncode == 0, poll.stderr
        assert proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/lapor", timeout=10).status_code == 200
        # the metrics of every worker, on the metrics port, from files in the RuntimeDirectory
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert 'bcc_portal_http_requests_total{method="GET",route="/lapor",status="2xx"} 1.0' in metrics
        assert list((tmp_path / "run" / "metrics").glob("counter_*.db"))
        workers = int(start[start.index("--workers") + 1])
        lock_dir = tmp_path / "run"

        def claimed() -> list[str]:
            return sorted(p.name for p in lock_dir.glob("bcc-mqtt-*/*.lock"))

        eventually_sync(
            lambda: len(claimed()) == workers,
            timeout=30,
            what="every worker claimed its MQTT account in the RuntimeDirectory",
        )
        assert claimed() == [f"{k}.lock" for k in range(1, workers + 1)]
        yield Portal(port, proc)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
        print((tmp_path / "portal.log").read_text(errors="replace")[-4000:])  # shown on failure


def test_readiness_poll_fails_while_nothing_answers(tmp_path: Path) -> None:
    """The ExecStartPost poll is a real check: with no portal it gives up and fails the start."""
    (post,) = unit("bcc-portal.service").commands("ExecStartPost")
    argv = on_port(post, free_port())
    # a short version of the same poll: 2 retries instead of 60
    argv[argv.index("--retry") + 1] = "2"
    argv[argv.index("--retry-max-time") + 1] = "3"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 7, result.stderr  # curl: failed to connect


@dataclass
class Front:
    http: int
    https: int
    ca: Path


@pytest.fixture
def nginx_front(portal_unit: Portal, tmp_path: Path) -> Iterator[Front]:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    text, cert = site_with_certificate(prefix)
    http, https = free_port(), free_port()
    for old, new in [
        ("    listen [::]:80;\n", ""),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{portal_unit.port};"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    checked = nginx_test(prefix, text, root_workers=True)
    assert checked.returncode == 0, checked.stderr
    binary = checked.args[0]
    log = (prefix / "nginx.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
        stdout=log, stderr=log,
    )  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(cert))
    try:

        def answers() -> bool:
            assert proc.poll() is None, (prefix / "nginx.log").read_text()
            try:
                return (
                    httpx.get(f"https://127.0.0.1:{https}/lapor", verify=trusted, timeout=5).status_code
                    == 200
                )
            except httpx.TransportError:
                return False

        eventually_sync(answers, timeout=20, step=0.1, what="nginx answers over TLS")
        yield Front(http, https, cert)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        print((prefix / "nginx.log").read_text(errors="replace")[-3000:])  # shown on failure


def test_portal_behind_nginx(nginx_front: Front) -> None:
    # plain HTTP: a redirect to the same path over HTTPS, nothing of the portal
    plain = httpx.get(f"http://127.0.0.1:{nginx_front.http}/lacak?kode=X", headers={"Host": HOST})
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{HOST}/lacak?kode=X"
    # HTTPS (TLS 1.2 is enough): the portal's page, with HSTS
    tls12 = ssl.create_default_context(cafile=str(nginx_front.ca))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    base = f"https://127.0.0.1:{nginx_front.https}"
    with httpx.Client(base_url=base, verify=tls12, headers={"Host": HOST}, timeout=30) as client:
        page = client.get("/lapor")
        assert page.status_code == 200 and 'name="csrf_token"' in page.text
        assert page.headers["strict-transport-security"] == "max-age=63072000"
        # the largest body the portal accepts reaches it (here refused for its content, not its size)
        portal_cap = Settings(secret_key=secrets.token_hex(32)).max_body_bytes
        largest = client.post("/lapor", content=b"x" * portal_cap, headers={"Content-Type": "text/plain"})
        assert 400 <= largest.status_code < 500 and largest.status_code != 413, largest.status_code
        # one byte more: nginx answers 413 itself (the portal would close unread: nginx would say 502)
        refused = client.post(
            "/lapor", content=b"x" * (portal_cap + 1), headers={"Content-Type": "text/plain"}
        )
        assert refused.status_code == 413 and re.search(r"<center>nginx</center>", refused.text)
