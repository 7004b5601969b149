"""The group-commit writer for submissions, on both databases: concurrent submissions share
transactions in the writer process, each gets its own committed report, one bad row fails only its own
request, the reporter's outbox row commits with its report, and a dead writer is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.db import make_engine, session_factory, upgrade
from portal.models import Notification, Photo, Report, ReportEntry
from portal.reference import load_reference
from portal.services import reports
from portal.services.notify import Notifier, NotifyingSink, SmtpSettings
from portal.services.report_writer import MAX_QUEUED_BYTES, ReportWriter, WriterDied
from tests.support.portal import empty_tables
from tests.support.portal_app import jpeg
from tests.support.wait import eventually

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Events:
    def __init__(self) -> None:
        self.created: list[str] = []

    def report_event(self, payload: dict[str, Any]) -> None:
        self.created.append(payload["report"])

    def backlog_changed(self) -> None:
        pass


@pytest.fixture
def setup(portal_db_url: str, tmp_path: Path) -> Any:
    engine = make_engine(portal_db_url)
    upgrade(engine)
    yield session_factory(engine), reports.PhotoPolicy(tmp_path / "media", 5_000_000, 3)
    engine.dispose()


def prepared(policy: reports.PhotoPolicy, n: int, photos: int = 0) -> reports.Prepared:
    inp = reports.ReportInput(
        category="kesehatan",
        title=f"Laporan {n}",
        description="Isi",
        kelurahan="tangsi",
        privacy="anonymous" if n % 3 else "public",
        lat="3.6" if n % 2 else "",
        lon="98.5" if n % 2 else "",
        contact_name="Siti" if n % 2 else "",
    )
    return reports.prepare_report(load_reference(), inp, [jpeg()] * photos, policy, NOW)


async def store(writer: ReportWriter, p: reports.Prepared) -> reports.NewReport:
    """Submit ``p`` and return the stored report (no rate limit refuses these clients)."""
    new = await writer.submit(p)
    assert new is not None, "refused by the rate limit"
    return new


async def test_concurrent_submissions_share_transactions_and_all_commit(setup: Any) -> None:
    sessions, policy = setup
    events = Events()
    writer = ReportWriter(sessions, lambda: events)
    batch = [prepared(policy, n, photos=n % 2) for n in range(60)]
    stored = await asyncio.gather(*(store(writer, p) for p in batch))
    await writer.close()

    assert [r.code for r in stored] == [p.values["code"] for p in batch]
    assert writer.reports == 60 and writer.batches < 60  # at least one transaction held several reports
    assert sorted(events.created) == sorted(r.code for r in stored)
    with sessions() as db:
        rows = {r.code: r for r in db.scalars(select(Report))}
        assert set(rows) == {r.code for r in stored}
        for r, p in zip(stored, batch, strict=True):
            # what the plain DB-API INSERT stored reads back through the ORM as exactly the prepared
            # values: tz-aware UTC datetimes, booleans, NULLs (portal.db.RawInsert)
            assert rows[r.code].id == r.id
            assert {k: getattr(rows[r.code], k) for k in p.values} == p.values
            assert rows[r.code].created_at.tzinfo is not None and r.created_at == NOW
        entries = db.scalars(select(ReportEntry)).all()
        assert sorted(e.report_id for e in entries) == sorted(r.id for r in stored)
        assert {e.kind for e in entries} == {"created"}
        assert db.scalar(select(func.count()).select_from(Photo)) == 30
    assert len(list(policy.media_dir.iterdir())) == 30


async def test_a_bad_row_fails_only_its_own_submission(setup: Any) -> None:
    sessions, policy = setup
    writer = ReportWriter(sessions, lambda: Events())
    first = await store(writer, prepared(policy, 0))
    good = [prepared(policy, n, photos=1) for n in range(1, 6)]
    # a tracking-code collision with a stored report: the unique index refuses that row only
    clash = prepared(policy, 99, photos=1)
    clash.values["code"] = first.code
    results = await asyncio.gather(
        *(writer.submit(p) for p in [*good[:2], clash, *good[2:]]), return_exceptions=True
    )
    await writer.close()

    assert isinstance(results[2], IntegrityError)
    assert [r.code for r in results if isinstance(r, reports.NewReport)] == [p.values["code"] for p in good]
    with sessions() as db:
        codes = set(db.scalars(select(Report.code)))
        assert codes == {first.code, *(p.values["code"] for p in good)}
        stored_photos = set(db.scalars(select(Photo.filename)))
    # the refused report's photo file is gone; the others' are kept and referenced
    files = {p.name for p in policy.media_dir.iterdir()}
    assert files == stored_photos and len(files) == 5
    assert clash.photos[0].filename not in files


async def test_close_waits_for_queued_submissions(setup: Any) -> None:
    sessions, policy = setup
    writer = ReportWriter(sessions, lambda: Events())
    pending = [asyncio.ensure_future(writer.submit(prepared(policy, n))) for n in range(20)]
    await asyncio.sleep(0)  # let them queue
    await writer.close()
    assert all(p.done() for p in pending)
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Report)) == 20


async def test_a_cancelled_submission_is_still_written_and_close_stops_the_process(setup: Any) -> None:
    sessions, policy = setup
    writer = ReportWriter(sessions, lambda: Events())
    gone = prepared(policy, 1)
    task = asyncio.ensure_future(writer.submit(gone))
    await asyncio.sleep(0)  # sent to the writer process
    task.cancel()  # the client went away: its answer is dropped, its report is not
    process = writer._process
    await writer.close()
    assert task.cancelled()
    assert process is not None and not process.is_alive() and process.exitcode == 0
    with sessions() as db:
        assert list(db.scalars(select(Report.code))) == [gone.values["code"]]
    # a submission after close starts a new writer process
    again = await writer.submit(prepared(policy, 2))
    assert again is not None and writer.reports == 2
    assert writer._process is not None and writer._process.pid != process.pid
    await writer.close()


async def test_a_dead_writer_fails_its_batches_and_is_replaced(setup: Any) -> None:
    sessions, policy = setup
    writer = ReportWriter(sessions, lambda: Events())
    first = await writer.submit(prepared(policy, 1))
    assert first is not None and writer._process is not None and writer.max_in_flight == 2
    dead = writer._process
    assert dead.pid is not None
    os.kill(dead.pid, signal.SIGSTOP)  # frozen: what is sent stays in flight until the kill
    # two batches go to the writer (one it would commit, one waiting in the pipe), the third waits here
    sent = [asyncio.ensure_future(writer.submit(prepared(policy, n))) for n in (2, 3)]
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(writer.submit(prepared(policy, 4)))
    await eventually(
        lambda: len(writer._in_flight) == 2 and len(writer._pending) == 1, what="2 batches sent, 1 queued"
    )
    os.kill(dead.pid, signal.SIGKILL)
    for lost in sent:
        with pytest.raises(WriterDied):
            await lost
    # what was still queued goes to the new writer, and so does everything after
    assert (await queued) is not None
    assert (await writer.submit(prepared(policy, 5))) is not None
    assert writer._process is not None and writer._process.pid != dead.pid
    await writer.close()
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Report)) == 3


async def test_a_lost_database_connection_costs_no_submission(postgres_url: str, tmp_path: Path) -> None:
    """The writer keeps one connection from batch to batch (no pool check-out or pre-ping each time);
    when the server has dropped it (a restart, an idle timeout), the next submission is written on a
    new connection instead of failing."""
    empty_tables(postgres_url)
    engine = make_engine(postgres_url)
    sessions = session_factory(engine)
    policy = reports.PhotoPolicy(tmp_path / "media", 5_000_000, 3)
    writer = ReportWriter(sessions, lambda: Events())
    try:
        assert (await writer.submit(prepared(policy, 1))) is not None
        with engine.connect() as conn:
            dropped = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        assert dropped  # the writer's connection was among them
        assert (await writer.submit(prepared(policy, 2))) is not None
        assert (await writer.submit(prepared(policy, 3))) is not None
        await writer.close()
        with sessions() as db:
            assert db.scalar(select(func.count()).select_from(Report)) == 3
    finally:
        await writer.close()
        engine.dispose()


async def test_a_large_second_batch_waits_for_the_writer(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the writer commits one batch, a second is sent only if it fits the socket buffer: a big
    one waits until nothing is in flight, so the event loop never blocks on a full pipe."""
    sessions, policy = setup
    writer = ReportWriter(sessions, lambda: Events())
    await writer.submit(prepared(policy, 0))  # started
    conn, process = writer._conn, writer._process
    assert conn is not None and process is not None and process.pid is not None
    sent: list[tuple[int, int]] = []  # (message size, batches already with the writer)
    real_send = conn.send_bytes

    def spy(data: Any, offset: int = 0, size: int | None = None) -> None:
        sent.append((len(data), len(writer._in_flight) - 1))  # _send records the batch first
        real_send(data, offset, size)

    monkeypatch.setattr(conn, "send_bytes", spy)
    os.kill(process.pid, signal.SIGSTOP)
    small = [asyncio.ensure_future(writer.submit(prepared(policy, n))) for n in (1, 2)]
    await asyncio.sleep(0)
    big = []
    for n in range(3, 40):  # 37 reports of 4,000 characters: one message of over 64 KB
        p = prepared(policy, n)
        p.values["description"] = f"panjang {n:03d} " * 330  # distinct strings (pickle shares equal objects)
        big.append(asyncio.ensure_future(writer.submit(p)))
    await eventually(
        lambda: len(writer._in_flight) == 2 and len(writer._pending) == 37, what="2 batches sent, 37 queued"
    )
    os.kill(process.pid, signal.SIGCONT)
    assert all(r is not None for r in await asyncio.gather(*small, *big))
    await writer.close()
    assert max(size for size, _ in sent) > MAX_QUEUED_BYTES  # the big batch went as one message
    assert all(size <= MAX_QUEUED_BYTES for size, busy in sent if busy)  # but never behind another
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Report)) == 40


async def test_the_outbox_row_commits_with_its_report_in_the_writer(setup: Any) -> None:
    sessions, policy = setup
    notifier = Notifier(SmtpSettings("127.0.0.1", 1), sessions, "https://lapor.example")  # never started
    inner = Events()
    writer = ReportWriter(sessions, lambda: NotifyingSink(inner, notifier))
    with_contact = prepared(policy, 1)  # odd n: a contact name; the outbox keeps a row per event anyway
    stored = await writer.submit(with_contact)
    await writer.close()
    assert stored is not None and inner.created == [stored.code]  # emitted by the web process
    with sessions() as db:
        rows = db.scalars(select(Notification)).all()
        assert [(r.code, r.event) for r in rows] == [(stored.code, "created")]
        assert rows[0].created_at == NOW
