"""``bcc portal serve --workers 2`` on PostgreSQL: two real worker processes answer, the submission
limit is one limit for both (it lives in the database, not in a worker's memory), and /metrics on the
metrics port adds up what both workers counted."""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, select

from bcc_common.net import free_port
from portal.db import make_engine
from portal.models import Report
from tests.support.alert_rules import used_metrics
from tests.support.portal import empty_tables
from tests.support.portal_app import report_form
from tests.support.wait import eventually_sync


@pytest.fixture
def empty_postgres(postgres_url: str) -> str:
    empty_tables(postgres_url)
    return postgres_url


def worker_processes(parent: psutil.Process) -> list[psutil.Process]:
    """uvicorn's worker processes (spawned by multiprocessing; not its resource tracker)."""
    return [c for c in parent.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]


@dataclass(frozen=True)
class Workers:
    url: str
    parent: psutil.Process  # uvicorn's main process (it also serves /metrics)
    metrics_url: str
    metrics_dir: Path  # $RUNTIME_DIRECTORY/metrics: each worker's counts in its own files


@pytest.fixture
def two_workers(empty_postgres: str, tmp_path: Path) -> Iterator[Workers]:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "BCC_PORTAL_SECRET_KEY": secrets.token_hex(32),
        "BCC_PORTAL_DATABASE_URL": empty_postgres,
        "BCC_PORTAL_MEDIA_DIR": str(tmp_path / "media"),
        "BCC_PORTAL_COOKIE_SECURE": "false",
        "BCC_PORTAL_SUBMISSIONS_PER_HOUR": "3",
        "RUNTIME_DIRECTORY": str(tmp_path / "run"),  # what systemd's RuntimeDirectory= sets
    }
    env.pop("BCC_PORTAL_MQTT_HOST", None)
    cmd = [sys.executable, "-m", "bcc", "portal", "serve", "--workers", "2", "--port", str(port)]
    cmd += ["--metrics-port", str(metrics_port)]
    log = tmp_path / "portal.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        parent = psutil.Process(proc.pid)

        def ready() -> bool:
            assert proc.poll() is None, f"bcc portal serve exited with {proc.returncode}"
            try:
                return (
                    len(worker_processes(parent)) == 2 and httpx.get(url + "/", timeout=2).status_code == 200
                )
            except (httpx.HTTPError, psutil.Error):
                return False

        eventually_sync(ready, timeout=60, step=0.1, what="both portal workers started and the port answers")
        yield Workers(url, parent, f"http://127.0.0.1:{metrics_port}/metrics", tmp_path / "run" / "metrics")
    finally:
        proc.terminate()
        proc.wait(20)
        print(log.read_text(errors="replace")[-4000:])  # shown on failure


def submit(url: str) -> int:
    """A fresh browser (own cookies, own connection) submits once; returns the status code."""
    with httpx.Client(base_url=url) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/lapor").text)
        assert token
        return c.post("/lapor", data={"csrf_token": token.group(1), **report_form()}).status_code


def uses_postgres(worker: psutil.Process) -> bool:
    """The worker's report-writer process (a descendant: forked by the worker's fork server) holds a
    pooled connection to PostgreSQL: the worker has served a submission (GET /lapor never touches the
    database, the writer connects on its first batch, and nothing else connects without MQTT or SMTP)."""
    return any(
        c.raddr and c.raddr.port == 5432
        for p in (worker, *worker.children(recursive=True))
        for c in p.net_connections(kind="tcp")
    )


def test_two_worker_processes_share_the_submission_limit(two_workers: Workers, empty_postgres: str) -> None:
    url = two_workers.url
    workers = worker_processes(two_workers.parent)
    assert len(workers) == 2
    # Every submission comes on new connections, and the kernel hands each to whichever worker
    # accepts first: submit until both workers have served submissions (at least 8 in all).
    statuses: list[int] = []
    while len(statuses) < 8 or not all(uses_postgres(w) for w in workers):
        assert len(statuses) < 60, "the kernel never gave a submission to the second worker"
        statuses.append(submit(url))
    # the limit (3 per client per hour) held across both processes: 3 stored, every later one refused
    assert statuses[:3] == [303] * 3 and set(statuses[3:]) == {429}
    engine = make_engine(empty_postgres)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Report)) == 3
    engine.dispose()


def test_workers_answer_keep_alive_requests_without_a_nagle_stall(
    two_workers: Workers,
) -> None:
    """uvicorn binds the socket for its workers without IPPROTO_TCP, so asyncio leaves Nagle on and a
    response sent as headers + body waits for the client's delayed ACK (40 ms on Linux, every time).
    portal.cli.NoDelayH11Protocol sets TCP_NODELAY; without it every request below takes >= 40 ms."""
    with httpx.Client(base_url=two_workers.url) as c:  # one keep-alive connection
        took = []
        for _ in range(30):
            t0 = time.perf_counter()
            assert c.get("/lacak").status_code == 200
            took.append(time.perf_counter() - t0)
    assert statistics.median(took) < 0.035, took


def samples(metrics_url: str) -> list[Sample]:
    text = httpx.get(metrics_url, timeout=5).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def scraped(metrics_url: str, name: str, labels: dict[str, str]) -> float:
    """One sample of the metrics endpoint (0 when absent)."""
    found = [s.value for s in samples(metrics_url) if s.name == name and s.labels == labels]
    return float(found[0]) if found else 0.0


def test_metrics_of_both_workers_add_up(two_workers: Workers) -> None:
    """Each request on its own connection, so the kernel spreads them over both workers; the
    endpoint (in uvicorn's main process) reports the sum of both workers' files."""
    counted = {"method": "GET", "route": "/lacak", "status": "2xx"}
    before = scraped(two_workers.metrics_url, "bcc_portal_http_requests_total", counted)
    sent = 0
    # a worker's counter file appears with its first request (the main process counts nothing)
    while sent < 20 or len(list(two_workers.metrics_dir.glob("counter_*.db"))) < 2:
        assert sent < 200, "the kernel never gave a request to the second worker"
        assert httpx.get(two_workers.url + "/lacak").status_code == 200
        sent += 1
    total = scraped(two_workers.metrics_url, "bcc_portal_http_requests_total", counted)
    assert total - before == sent
    histogram = {"method": "GET", "route": "/lacak"}
    assert (
        scraped(two_workers.metrics_url, "bcc_portal_http_request_duration_seconds_count", histogram) == total
    )
    # every portal metric the alert rules use is there (a renamed one would make an alert that never fires)
    wanted = {n for n in used_metrics() if n.startswith("bcc_portal_")}
    assert wanted and wanted <= {s.name for s in samples(two_workers.metrics_url)}
    # and the public port does not serve them (nginx passes every path there to the portal)
    assert httpx.get(two_workers.url + "/metrics").status_code == 404
