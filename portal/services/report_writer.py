"""Group commit for citizen submissions, written by a writer process: concurrent requests share one
transaction, and the database work runs outside the web process's interpreter.

Each submission still gets its answer only after its own rows are committed (the tracking code a
citizen sees is always stored). Each portal process starts one writer process (from a fork server that
has already imported this module, so a start costs milliseconds) and talks to it over a pipe that the
event loop watches: no thread in the web process. At most ``max_in_flight`` batches (2) are with the
writer: while it commits one, the next is already waiting in the pipe, so the writer never idles
waiting for the web process to get round to its results (+15-20 % submissions/s against one batch at a
time); further submissions queue up, and the next batch takes all of them (at most ``max_batch``).
Under light load a batch is a single report, so latency is that of a plain insert; under heavy load
the per-report cost of the transaction and the commit is shared.

Why a process and not a thread (docs/performance.md, "Portal"): with a writer thread the web process's
event loop and the writer took turns on one interpreter lock, and every return from SQLite's C code
waited for the loop to let go of it; the loop ran at 70 % of a core and submissions reached 0.26-0.33
of the trivial endpoint's rate. The web process now only pickles a batch and reads back small records.

The rows that must commit with a report are staged in the web process (the reporter's e-mail in the
outbox, portal.services.notify) and sent with it; the ``created`` events are emitted in the web process
once the batch has committed, through the app's sink (MQTT, notifications).

A batch that fails is retried one report at a time, so that one bad row (or a tracking-code collision)
fails only its own request. A request whose client goes away is still written (its future is cancelled,
the report is kept): a write already queued is never half-done. If the writer process dies, the
submissions of the batch it was writing fail with :class:`WriterDied` (they may or may not be stored)
and the next submission starts a new writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from portal.db import make_engine
from portal.models import Photo
from portal.services.events import EventSink, emit, stage
from portal.services.ratelimit import RateLimiter
from portal.services.reports import NewReport, Prepared, new_report, store_reports

log = structlog.get_logger("portal.report_writer")

Outcome = NewReport | None | BaseException
StagedRow = tuple[type, dict[str, Any]]  # an ORM class and its column values
Item = tuple[Prepared, "asyncio.Future[NewReport | None]"]

# A fork server that has imported this module (and with it SQLAlchemy, the models and the drivers'
# dialects): a writer starts in milliseconds, and it does not inherit the web process's threads.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__])


class WriterDied(RuntimeError):
    """The writer process ended while it was writing a batch: those submissions may or may not be stored."""


class StagedRows:
    """Stands in for the session while a sink stages the rows that commit with an event (``stage`` only
    calls ``add``): each row is kept as its class and column values, to be added in the writer."""

    def __init__(self) -> None:
        self.rows: list[StagedRow] = []

    def add(self, row: object) -> None:
        mapper = inspect(type(row))
        self.rows.append((type(row), {a.key: getattr(row, a.key) for a in mapper.column_attrs}))


class _Prestaged:
    """The writer's sink for :func:`store_reports`: adds each report's rows staged in the web process
    before the commit (events are emitted by the web process when the batch's results arrive)."""

    def __init__(self, staged: dict[str, list[StagedRow]]) -> None:
        self.staged = staged

    def stage(self, db: Session, event: str, code: str, now: datetime, key: str = "") -> None:
        for cls, values in self.staged.get(code, ()):
            db.add(cls(**values))

    def report_event(self, payload: dict[str, Any]) -> None:
        return None

    def backlog_changed(self) -> None:
        return None


def write_batch(
    sessions: Callable[[], contextlib.AbstractContextManager[Session]],
    batch: Sequence[Prepared],
    staged: dict[str, list[StagedRow]],
    limiter: RateLimiter | None,
    reused_connection: bool = False,
) -> list[Outcome]:
    """Insert ``batch`` in one transaction; if that fails, one report at a time (each its own outcome).
    A single report is retried too if it failed on a connection kept from an earlier batch
    (``reused_connection``): that connection may have died meanwhile (a database restart), and the
    retry runs on a new one."""
    sink = _Prestaged(staged)

    def write(part: Sequence[Prepared], discard_on_error: bool) -> list[NewReport | None]:
        with sessions() as db:
            return store_reports(db, part, sink, discard_on_error, limiter)

    retry = len(batch) > 1 or reused_connection
    try:
        return list(write(batch, not retry))
    except Exception as err:
        if not retry:
            return [err]
        log.warning("batch insert failed, retrying one by one", size=len(batch), exc_info=True)
    outcomes: list[Outcome] = []
    for prepared in batch:
        try:
            outcomes.append(write([prepared], True)[0])
        except Exception as err:
            outcomes.append(err)
    return outcomes


class LongSession:
    """The writer process's one session on one connection, kept from batch to batch.

    A session and a pool check-out per batch cost the writer a quarter of its time on SQLite, and on
    PostgreSQL the pool's pre-ping added a round trip to every batch (docs/performance.md, "Portal").
    After an error both are dropped, so the next batch starts on a new connection (a server restart or
    a broken connection costs a retry, not the writer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._session: Session | None = None

    @property
    def connected(self) -> bool:
        """The next use reuses the connection of an earlier one."""
        return self._session is not None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Session]:
        if self._session is None:
            self._conn = self.engine.connect()
            self._session = Session(bind=self._conn, expire_on_commit=False)
        try:
            yield self._session
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        session, conn = self._session, self._conn
        self._session = self._conn = None
        with contextlib.suppress(Exception):
            if session is not None:
                session.close()
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()


def _portable(outcome: int | BaseException | None) -> int | BaseException | None:
    """An outcome that survives the pipe: an exception that cannot be pickled becomes a RuntimeError."""
    if isinstance(outcome, BaseException):
        try:
            pickle.dumps(outcome)
        except Exception:
            return RuntimeError(f"{type(outcome).__name__}: {outcome}")
    return outcome


# Plain pickle.dumps, not Connection.send: multiprocessing's ForkingPickler copies its dispatch table
# for every message, which cost the web process as much as the pickling itself.
PICKLE = pickle.HIGHEST_PROTOCOL
# A second batch is sent while the writer is still committing the first only if it is this small: the
# pipe is a Unix socket pair whose buffer (about 200 KB on Linux) then holds it without blocking.
MAX_QUEUED_BYTES = 64 * 1024
Packed = tuple[dict[str, object], list[tuple[str, int, int, int]], str, str]


def pack(prepared: Prepared) -> Packed:
    """``prepared`` as plain values for the pipe: pickling dicts, tuples and datetimes is C code, while
    a dataclass, a ``Path`` or an ORM object goes through Python-level reducers (they cost the web
    process more than the rest of the hand-off)."""
    photos = [(p.filename, p.width, p.height, p.size_bytes) for p in prepared.photos]
    return prepared.values, photos, str(prepared.media_dir), prepared.client


def unpack(packed: Packed) -> Prepared:
    values, photos, media_dir, client = packed
    return Prepared(
        values,
        [Photo(filename=f, width=w, height=h, size_bytes=n) for f, w, h, n in photos],
        Path(media_dir),
        client,
    )


def _serve(
    conn: multiprocessing.connection.Connection, database_url: str, limiter: RateLimiter | None
) -> None:
    """The writer process: write each batch received, send back each report's outcome (its id, None
    when the rate limit refused it, or the exception); ends at ``None`` or when the web process has gone
    (end of file on the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the portal, which then stops us
    engine = make_engine(database_url)
    sessions = LongSession(engine)
    stop = threading.Event()
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _no_autocheckpoint)
        threading.Thread(target=_checkpoints, args=(engine, stop), name="wal-checkpoint", daemon=True).start()
    try:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            if message is None:
                break
            packed, staged = message
            outcomes = write_batch(sessions, [unpack(p) for p in packed], staged, limiter, sessions.connected)
            ids = [o.id if isinstance(o, NewReport) else o for o in outcomes]
            try:
                try:
                    reply = pickle.dumps(ids, PICKLE)
                except (pickle.PicklingError, TypeError, AttributeError):
                    reply = pickle.dumps([_portable(o) for o in ids], PICKLE)
                conn.send_bytes(reply)
            except OSError:  # the web process has gone
                break
    finally:
        stop.set()
        sessions.close()
        engine.dispose()


CHECKPOINT_EVERY_S = 1.0


def _no_autocheckpoint(dbapi_conn: Any, _record: object) -> None:
    """The writer's commits do not copy the WAL back into the database file themselves (SQLite's
    automatic checkpoint, with its fsync, ran inside every 50th to 100th commit: half of all commit
    time); :func:`_checkpoints` does it beside them."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def _checkpoints(engine: Engine, stop: threading.Event) -> None:
    """A PASSIVE checkpoint every second on its own connection: it copies what no reader still needs and
    never blocks the writer, which keeps committing to the WAL meanwhile."""
    while not stop.wait(CHECKPOINT_EVERY_S):
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning("WAL checkpoint failed", exc_info=True)


class ReportWriter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        sink: Callable[[], EventSink],
        limiter: RateLimiter | None = None,
        max_batch: int = 200,
        max_in_flight: int = 2,
    ) -> None:
        self.sessions = sessions
        engine = sessions.kw["bind"]
        self.database_url: str = engine.url.render_as_string(hide_password=False)
        self.limiter = limiter  # counted in the batch's transaction: one shared limit for all workers
        self.sink = sink  # read per batch: the app swaps its sink when MQTT or SMTP start and stop
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop watching the pipe
        self._pending: deque[Item] = deque()
        self._in_flight: deque[list[Item]] = deque()  # batches sent, oldest first
        self._held = False  # the next batch is too big to queue behind the one in flight (see _send)
        self.max_in_flight = max_in_flight  # batches with the writer at once (one committing, one waiting)
        self._idle: list[asyncio.Future[None]] = []  # close() waiting for the queue to drain
        self.batches = 0
        self.reports = 0

    # ---- the web process's side ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer process now (blocking; the app calls it in a thread at start-up). Without
        it, the first submission starts it."""
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return
            parent, child = _CONTEXT.Pipe()
            process = _CONTEXT.Process(
                target=_serve,
                args=(child, self.database_url, self.limiter),
                name="portal-report-writer",
                daemon=True,
            )
            process.start()
            child.close()
            self._process, self._conn = process, parent

    async def submit(self, prepared: Prepared) -> NewReport | None:
        """Store ``prepared``; returns the stored report once its transaction has committed, or None
        when the rate limit refused its client (``prepared.client``)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._attach(loop)
        future: asyncio.Future[NewReport | None] = loop.create_future()
        self._pending.append((prepared, future))
        if len(self._in_flight) < self.max_in_flight and not self._held:
            self._send()
        return await future

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the pipe from ``loop``. A writer attached to another (finished) loop is replaced: what
        that loop was waiting for is gone with it."""
        if self._loop is not None:
            self._detach()
            self._stop_process()
        self.start()
        assert self._conn is not None
        loop.add_reader(self._conn.fileno(), self._on_results)
        self._loop = loop

    def _detach(self) -> None:
        if self._loop is not None and self._conn is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._conn.fileno())
        self._loop = None
        self._in_flight.clear()
        self._pending.clear()
        self._held = False

    def _stop_process(self) -> None:
        with self._lock:
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if conn is not None:
            conn.close()  # the writer finishes its batch, sees the end of the pipe and exits
        if process is not None:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)

    def _send(self) -> None:
        """Send the next batch (at most ``max_batch`` of what is pending) to the writer."""
        count = min(len(self._pending), self.max_batch)
        batch = [self._pending.popleft() for _ in range(count)]
        sink = self.sink()
        staged: dict[str, list[StagedRow]] = {}
        if getattr(sink, "stage", None) is not None:
            for prepared, _ in batch:
                rows = StagedRows()
                stage(
                    rows,  # type: ignore[arg-type]
                    sink,
                    "created",
                    str(prepared.values["code"]),
                    prepared.values["created_at"],  # type: ignore[arg-type]
                    prepared.key,
                )
                staged[str(prepared.values["code"])] = rows.rows
        message = pickle.dumps(([pack(p) for p, _ in batch], staged), PICKLE)
        if self._in_flight and len(message) > MAX_QUEUED_BYTES:
            # the writer is busy: a message this size could fill the socket buffer and block the
            # event loop until the writer reads it; send it when the batch in flight is done (held,
            # so that the submissions arriving meanwhile do not pack and pickle it again each time)
            self._pending.extendleft(reversed(batch))
            self._held = True
            return
        self._in_flight.append(batch)
        assert self._conn is not None
        try:
            self._conn.send_bytes(message)
        except OSError:
            self._writer_died()

    def _on_results(self) -> None:
        """The pipe is readable: the outcomes of the batch in flight (or the end of a dead writer)."""
        assert self._conn is not None
        try:
            outcomes: list[int | BaseException | None] = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            self._writer_died()
            return
        batch = self._in_flight.popleft()
        self.batches += 1
        self.reports += len(batch)
        sink = self.sink()
        for (prepared, future), outcome in zip(batch, outcomes, strict=True):
            result: Outcome = outcome  # type: ignore[assignment]
            if isinstance(outcome, int):
                result = new_report(outcome, prepared)
                emit(sink, "created", result, result.created_at)
            if future.done():  # cancelled: the client went away; the report is stored all the same
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._held = False
        while self._pending and len(self._in_flight) < self.max_in_flight and not self._held:
            self._send()
        if not self._pending and not self._in_flight:
            self._wake_idle()

    def _wake_idle(self) -> None:
        """Nothing is queued or in flight: let :meth:`close` go on."""
        for waiter in self._idle:
            if not waiter.done():
                waiter.set_result(None)
        self._idle.clear()

    def _writer_died(self) -> None:
        """The writer process has gone: fail what it was writing, start another for what is queued."""
        batch = [item for sent in self._in_flight for item in sent]
        self._in_flight.clear()
        if self._process is not None:
            self._process.join(1)  # reaped, so that its exit code is known
        exitcode = self._process.exitcode if self._process is not None else None
        log.error("report writer process died", exitcode=exitcode, lost=len(batch))
        for _, future in batch:
            if not future.done():
                future.set_exception(WriterDied(f"the report writer ended (exit code {exitcode})"))
        loop, pending = self._loop, list(self._pending)
        self._detach()
        self._stop_process()
        if loop is not None and pending:
            self._attach(loop)
            self._pending.extend(pending)
            self._send()
        else:
            self._wake_idle()

    def over_limit(self, client: str, now: datetime) -> bool:
        """A read-only look at the client's limit (blocking: call it from a thread)."""
        if self.limiter is None:
            return False
        with self.sessions() as db:
            return self.limiter.used(db.connection(), [client], now)[client[:64]] >= self.limiter.limit

    async def close(self) -> None:
        """Finish what is queued, then stop the writer process (called on shutdown, before the engine is
        disposed). Submissions after this start a new writer."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and (self._in_flight or self._pending):
            waiter: asyncio.Future[None] = loop.create_future()
            self._idle.append(waiter)
            await waiter
        if self._loop is loop:
            self._detach()
        with self._lock:
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(None, PICKLE))
        await asyncio.to_thread(self._stop_process)
