"""The contact-erasure job: due reports only, once per day, exactly one of two concurrent workers."""

from __future__ import annotations

import threading
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portal.db import make_engine, session_factory
from portal.models import JobRun, Report
from portal.runtime import runtime_of
from portal.services import erasure
from tests.support.portal import empty_tables
from tests.support.portal_app import START, csrf, report_id, staff_client, submit


def _contacts(app: FastAPI, rid: int) -> tuple[str, str, str]:
    with runtime_of(app).sessions() as db:
        r = db.get(Report, rid)
        assert r is not None
        return r.contact_name, r.contact_phone, r.contact_email


def test_contacts_are_erased_the_set_days_after_closure(app: FastAPI, client: TestClient) -> None:
    closed = report_id(app, submit(client))
    still_open = report_id(app, submit(client))
    admin = staff_client(app, "admin")
    admin.post(
        f"/staf/laporan/{closed}/tutup", data={"csrf_token": csrf(admin, "/staf"), "resolution": "rejected"}
    )
    admin.close()
    sessions = runtime_of(app).sessions
    day = timedelta(days=1)
    assert erasure.run_once(sessions, START + 364 * day, 365, "w1") == 0  # not yet due
    assert _contacts(app, closed) == ("Siti Aminah", "081234567890", "siti@example.id")
    assert erasure.run_once(sessions, START + 365 * day, 365, "w1") == 1
    assert erasure.run_once(sessions, START + 365 * day, 365, "w2") is None  # the day's run is done
    assert _contacts(app, closed) == ("", "", "")
    assert _contacts(app, still_open) == ("Siti Aminah", "081234567890", "siti@example.id")
    with runtime_of(app).sessions() as db:
        assert db.scalars(select(Report.contact_erased_at).where(Report.id == closed)).one() is not None
    page = staff_client(app, "admin")
    assert "Kontak pelapor sudah dihapus" in page.get(f"/staf/laporan/{closed}").text
    page.close()


def test_two_concurrent_workers_on_postgresql_erase_exactly_once(postgres_url: str) -> None:
    """Two workers (own engines and connections, as two processes would have) reach the day's run at
    the same instant; the unique (job, slot) key lets exactly one erase."""
    empty_tables(postgres_url)
    writer = make_engine(postgres_url)
    ids = []
    with session_factory(writer)() as db:
        for i in range(3):
            db.add(
                Report(
                    code=f"BJ-ERASE{i}",
                    category="perencanaan_pembangunan",
                    kecamatan="binjai_kota",
                    kelurahan="tangsi",
                    title="t",
                    description="d",
                    privacy="public",
                    contact_name="Siti",
                    contact_phone="0812",
                    contact_email="s@example.id",
                    status="closed",
                    resolution="rejected",
                    created_at=START,
                    updated_at=START,
                    verify_due=START,
                    closed_at=START,
                )
            )
        db.commit()
        ids = list(db.scalars(select(Report.id)))
    writer.dispose()
    now = START + timedelta(days=400)
    results: list[int | None] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        engine = make_engine(postgres_url)
        try:
            sessions = session_factory(engine)
            barrier.wait()
            results.append(erasure.run_once(sessions, now, 365, name))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results, key=lambda r: r is None) == [3, None]
    check = make_engine(postgres_url)
    with session_factory(check)() as db:
        runs = list(db.scalars(select(JobRun)))
        assert [(r.job, r.result, r.detail) for r in runs] == [("erase_contacts", "ok", "3 reports")]
        erased = db.scalar(select(func.count()).select_from(Report).where(Report.contact_phone == ""))
        assert erased == len(ids) == 3
    check.dispose()
