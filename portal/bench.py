"""Portal benchmark: submissions per second and queue-page latency at 100,000 reports, next to a trivial
FastAPI endpoint measured in the same run on the same machine (ceiling, FACTS.md).

Call ``await run_bench(...)`` or ``python -m portal.bench --json``; ``bcc bench portal`` can delegate here.
Everything runs in one process: uvicorn servers in threads, an httpx load generator on the main loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import insert, text

from portal.config import Settings
from portal.db import make_engine, session_factory, upgrade
from portal.main import create_app
from portal.models import Report
from portal.reference import load_reference
from portal.services import deadlines, users
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


class Server:
    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def _load(
    client: httpx.AsyncClient, count: int, concurrency: int, one: Any
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            t0 = time.perf_counter()
            await one(client, i)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - t0), latencies


def _p99_ms(values: list[float]) -> float:
    return round(sorted(values)[min(len(values) - 1, int(0.99 * len(values)))] * 1000, 2)


async def run_bench(
    reports: int = 100_000, submissions: int = 400, concurrency: int = 8, db_url: str = ""
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bcc-portal-bench-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        await asyncio.to_thread(seed_reports, url, reports)
        password = secrets.token_urlsafe(16)
        with session_factory(engine)() as db:
            users.create_user(db, load_reference(), "bench.admin", "admin", password, datetime.now(UTC))
        engine.dispose()
        settings = Settings(
            database_url=url,
            secret_key=secrets.token_hex(32),
            media_dir=Path(tmp) / "media",
            cookie_secure=False,
            submissions_per_hour=10**9,
        )
        trivial = FastAPI()

        @trivial.get("/ping")
        async def ping() -> dict[str, bool]:
            return {"ok": True}

        with Server(trivial) as trivial_url:
            async with httpx.AsyncClient(base_url=trivial_url) as c:
                trivial_rate, _ = await _load(c, submissions, concurrency, lambda c, i: c.get("/ping"))
        with Server(create_app(settings)) as portal_url:
            async with httpx.AsyncClient(base_url=portal_url) as c:
                page = await c.get("/lapor")
                token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                form = {
                    "csrf_token": token,
                    "category": "kesehatan",
                    "title": "Uji",
                    "kelurahan": "tangsi",
                    "description": "Uji beban pengiriman laporan.",
                    "privacy": "public",
                }

                async def submit(c: httpx.AsyncClient, i: int) -> None:
                    r = await c.post("/lapor", data=form)
                    assert r.status_code == 303, r.status_code

                submit_rate, submit_lat = await _load(c, submissions, concurrency, submit)
                login = await c.get("/staf/masuk")
                token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await c.post(
                    "/staf/masuk", data={"csrf_token": token, "username": "bench.admin", "password": password}
                )
                queue_lat = []
                for _ in range(200):
                    t0 = time.perf_counter()
                    r = await c.get("/staf")
                    queue_lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200
    return {
        "reports": reports,
        "submit_per_s": round(submit_rate, 1),
        "submit_p99_ms": _p99_ms(submit_lat),
        "trivial_per_s": round(trivial_rate, 1),
        "submit_vs_trivial": round(submit_rate / trivial_rate, 3),
        "queue_p50_ms": round(statistics.median(queue_lat) * 1000, 2),
        "queue_p99_ms": _p99_ms(queue_lat),
        "database": url.split(":", 1)[0],
        "concurrency": concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run_bench(args.reports, args.submissions, db_url=args.database_url))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
