"""Portal benchmark: submissions per second and queue-page latency at 100,000 reports, next to a trivial
FastAPI endpoint measured in the same run on the same machine (the ceiling).

Call ``await run_bench(...)`` or ``bcc bench portal --json``. Each
server runs in its own process (one uvicorn worker) and Debian's ``wrk`` generates the load, so the
client never shares the server's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import uvicorn
from fastapi import FastAPI
from sqlalchemy import insert, text

from bcc_common.net import free_port
from bench.common import ROOT
from portal.cli import NoDelayH11Protocol
from portal.db import make_engine, session_factory, upgrade
from portal.models import Report
from portal.reference import load_reference
from portal.services import deadlines, twofactor, users
from portal.services.reports import new_code


def seed_reports(url: str, count: int) -> None:
    """Insert ``count`` reports spread over a year, in all statuses, with one bulk insert per 10,000."""
    ref = load_reference()
    cats, kels = list(ref.categories), list(ref.all_kelurahan())
    statuses = ["submitted", "verified", "dispatched", "responded", "closed"]
    start = datetime.now(UTC) - timedelta(days=365)
    engine = make_engine(url)
    with engine.begin() as conn:
        for base in range(0, count, 10_000):
            rows = []
            for i in range(base, min(count, base + 10_000)):
                created = start + timedelta(seconds=i * 315)
                kel = kels[i % len(kels)]
                kec = ref.kecamatan_of(kel)
                assert kec is not None
                rows.append(
                    {
                        "code": new_code(),
                        "category": cats[i % len(cats)],
                        "agency": None,
                        "kecamatan": kec.key,
                        "kelurahan": kel,
                        "title": f"Laporan {i}",
                        "description": "Contoh laporan untuk uji beban.",
                        "address": "",
                        "privacy": "public",
                        "contact_name": "",
                        "contact_phone": "",
                        "contact_email": "",
                        "source": "bench",
                        "status": statuses[i % 5],
                        "created_at": created,
                        "updated_at": created,
                        "verify_due": deadlines.verify_due(created),
                        "verify_late": False,
                        "respond_late": False,
                    }
                )
            conn.execute(insert(Report), rows)
        conn.execute(text("ANALYZE"))  # planner statistics, as autovacuum would have them in production
    engine.dispose()


TRIVIAL = FastAPI()


@TRIVIAL.get("/ping")
async def ping() -> dict[str, bool]:
    """The ceiling: a trivial async endpoint on the same uvicorn set-up (measured at about 2.25k req/s
    with one uvicorn worker and wrk -c10 on a 2-core machine)."""
    return {"ok": True}


@contextlib.contextmanager
def _server(cmd: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    """A server in its own process (a load generator in the same process would share its GIL)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"server did not start: {cmd}\n{err[-2000:]}") from None
                time.sleep(0.05)  # readiness poll of the port
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _wrk(url: str, seconds: int, connections: int, script: str | None = None) -> dict[str, float]:
    """Run wrk (Debian's, an independent load generator) and parse requests/s, p99 and errors."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "rate": rate,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "bad": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


async def run_bench(
    reports: int = 100_000,
    submissions: int = 400,
    concurrency: int = 8,
    db_url: str = "",
    seconds: int = 6,
    workers: int = 1,
    rounds: int = 3,
) -> dict[str, Any]:
    """Submissions/s and p99 (wrk POSTing the real form), the staff queue p99 at ``reports`` reports,
    and the trivial endpoint's rate measured in the same run: ``rounds`` rounds of ``seconds`` of wrk
    on each, alternating; rates and the ratio are the medians over the rounds (each round's are in
    ``rounds``), the p99 the worst round's. ``submissions`` is kept for callers that bound the run by
    count."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package: wrk)")
    with tempfile.TemporaryDirectory(prefix="bcc-portal-bench-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        await asyncio.to_thread(seed_reports, url, reports)
        password = secrets.token_urlsafe(16)
        totp_secret = twofactor.new_secret()  # admins log in with a second factor
        with session_factory(engine)() as db:
            now = datetime.now(UTC)
            admin = users.create_user(db, load_reference(), "bench.admin", "admin", password, now)
            twofactor.enrol(db, admin, totp_secret, 0)
        engine.dispose()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # the trivial server is bench.portal, found in the checkout
            "BCC_PORTAL_SECRET_KEY": secrets.token_hex(32),
            "BCC_PORTAL_DATABASE_URL": url,
            "BCC_PORTAL_MEDIA_DIR": str(Path(tmp) / "media"),
            "BCC_PORTAL_COOKIE_SECURE": "false",
            # the production limit (10 per client per hour) stays on; each request comes from its own
            # random client address behind the (trusted) proxy, as thousands of citizens would
            "BCC_PORTAL_TRUST_FORWARDED_FOR": "true",
        }
        env.pop("BCC_PORTAL_MQTT_HOST", None)
        legs: list[tuple[dict[str, float], dict[str, float]]] = []
        py = sys.executable
        trivial_port, portal_port = free_port(), free_port()
        workers_arg = ["--workers", str(workers)]
        trivial_cmd = [py, "-m", "bench.portal", "--serve-trivial", str(trivial_port), *workers_arg]
        # the same uvicorn set-up as the trivial server: workers, log level warning (no access log)
        portal_cmd = [py, "-m", "bcc", "portal", "serve", "--port", str(portal_port), *workers_arg]
        # and with its metrics endpoint, as the shipped unit runs it (every request is counted)
        portal_cmd += ["--log-level", "warning", "--metrics-port", str(free_port())]
        with (
            _server(trivial_cmd, trivial_port, env) as trivial_url,
            _server(portal_cmd, portal_port, env) as portal_url,
        ):
            async with httpx.AsyncClient(base_url=portal_url) as c:
                page = await c.get("/lapor")
                token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
                form = {
                    "csrf_token": token,
                    "category": "kesehatan",
                    "title": "Uji",
                    "kelurahan": "tangsi",
                    "description": "Uji beban pengiriman laporan.",
                    "privacy": "public",
                }
                script = Path(tmp) / "submit.lua"
                script.write_text(
                    'wrk.method = "POST"\n'
                    f"wrk.body = {json.dumps(urlencode(form))}\n"
                    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                    f'wrk.headers["Cookie"] = {json.dumps(cookie)}\n'
                    "request = function()\n"
                    '  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",\n'
                    "    math.random(0, 255), math.random(0, 255), math.random(1, 254))\n"
                    "  return wrk.format()\n"
                    "end\n",
                    encoding="utf-8",
                )
                # Alternate the two loads, round after round: a machine whose speed drifts (shared
                # cores) then shifts both alike, and each round's ratio compares like with like.
                for _ in range(rounds):
                    trivial = await asyncio.to_thread(_wrk, trivial_url + "/ping", seconds, concurrency)
                    submit = await asyncio.to_thread(
                        _wrk, portal_url + "/lapor", seconds, concurrency, str(script)
                    )
                    if submit["bad"] or submit["socket_errors"]:
                        raise RuntimeError(f"submissions failed during the run: {submit}")
                    legs.append((trivial, submit))
                login = await c.get("/staf/masuk")
                token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await c.post(
                    "/staf/masuk", data={"csrf_token": token, "username": "bench.admin", "password": password}
                )
                second = await c.get("/staf/2fa")
                token = second.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await c.post("/staf/2fa", data={"csrf_token": token, "code": pyotp.TOTP(totp_secret).now()})
                queue_lat = []
                for _ in range(200):
                    t0 = time.perf_counter()
                    r = await c.get("/staf")
                    queue_lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200
    ratios = [s["rate"] / t["rate"] for t, s in legs]
    return {
        "reports": reports,
        "submit_per_s": round(statistics.median(s["rate"] for _, s in legs), 1),
        "submit_p99_ms": round(max(s["p99_ms"] for _, s in legs), 2),  # the worst round's
        "trivial_per_s": round(statistics.median(t["rate"] for t, _ in legs), 1),
        "submit_vs_trivial": round(statistics.median(ratios), 3),
        "rounds": [
            {"trivial_per_s": round(t["rate"], 1), "submit_per_s": round(s["rate"], 1), "ratio": round(r, 3)}
            for (t, s), r in zip(legs, ratios, strict=True)
        ],
        "queue_p50_ms": round(statistics.median(queue_lat) * 1000, 2),
        "queue_p99_ms": _p99_ms(queue_lat),
        "database": url.split(":", 1)[0],
        "concurrency": concurrency,
        "workers": workers,
        "load_generator": (
            f"wrk -t2 -c{concurrency}, {rounds} rounds of {seconds} s per endpoint, alternating; "
            f"servers in their own processes ({workers} uvicorn worker(s) each)"
        ),
    }


def _p99_ms(values: list[float]) -> float:
    return round(sorted(values)[min(len(values) - 1, int(0.99 * len(values)))] * 1000, 2)


def main() -> None:
    """``python -m bench.portal --serve-trivial PORT [--workers N]``: the benchmark's trivial server
    (the benchmark itself is ``bcc bench portal``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--serve-trivial", type=int, metavar="PORT", required=True)
    args = parser.parse_args()
    # exactly the uvicorn set-up of `bcc portal serve` as the benchmark starts it (protocol class,
    # workers, log level, no proxy headers, no Server header), minus the portal
    uvicorn.run(
        "bench.portal:TRIVIAL",
        port=args.serve_trivial,
        workers=args.workers,
        http=NoDelayH11Protocol,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
