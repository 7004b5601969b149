"""Group commit for citizen submissions: concurrent requests share one transaction.

Each submission still gets its answer only after its own rows are committed (the tracking code a
citizen sees is always stored). One writer thread per portal process takes submissions from a queue:
while it writes one batch, the next submissions queue up, and the batch after that takes all of them
(at most ``max_batch``). Under light load a batch is a single report, so latency is that of a plain
insert; under heavy load the per-report cost of the transaction and the commit is shared
(docs/performance.md, "Portal").

A dedicated thread with a plain queue, not ``asyncio.to_thread`` per batch: the executor hop, the
wrapped futures and a shield per request cost the event loop 60 us per submission (measured with a
writer that only slept), a fifth of the whole request. The thread hands a finished batch back to the
loop with one ``call_soon_threadsafe``.

A batch that fails is retried one report at a time, so that one bad row (or a tracking-code collision)
fails only its own request. A request whose client goes away is still written (its future is
cancelled, the report is kept): a write already queued is never half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.orm import Session, sessionmaker

from portal.services.events import EventSink
from portal.services.ratelimit import RateLimiter
from portal.services.reports import NewReport, Prepared, insert_reports

log = structlog.get_logger("portal.intake")

Outcome = NewReport | None | BaseException
Item = tuple[Prepared, asyncio.Future[NewReport | None], asyncio.AbstractEventLoop]


class ReportWriter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        sink: Callable[[], EventSink],
        limiter: RateLimiter | None = None,
        max_batch: int = 200,
    ) -> None:
        self.sessions = sessions
        self.limiter = limiter  # counted in the batch's transaction: one shared limit for all workers
        self.sink = sink  # read per batch: the app swaps its sink when MQTT or SMTP start and stop
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Item | None] | None = None  # the running thread's queue
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.reports = 0

    async def submit(self, prepared: Prepared) -> NewReport | None:
        """Store ``prepared``; returns the stored report once its transaction has committed, or None
        when the rate limit refused its client (``prepared.client``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[NewReport | None] = loop.create_future()
        todo = self._queue or self._start()
        todo.put((prepared, future, loop))
        return await future

    def _start(self) -> queue.SimpleQueue[Item | None]:
        with self._lock:
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._work, args=(self._queue,), name="portal-report-writer", daemon=True
                )
                self._thread.start()
            return self._queue

    def _work(self, todo: queue.SimpleQueue[Item | None]) -> None:
        """The writer thread: take what is queued (up to ``max_batch``), write it, hand results back;
        ends at the ``None`` that :meth:`close` queues after everything else."""
        stop = False
        while not stop:
            first = todo.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            outcomes = self._write_batch([p for p, _, _ in batch])
            self.batches += 1
            self.reports += len(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[NewReport | None], Outcome]]]
            by_loop = {}
            for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(loop, []).append((future, outcome))
            for loop, results in by_loop.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                    loop.call_soon_threadsafe(_deliver, results)

    def _write_batch(self, batch: list[Prepared]) -> list[Outcome]:
        try:
            return list(self._write(batch, len(batch) == 1))
        except Exception as err:
            if len(batch) == 1:
                return [err]
            log.warning("batch insert failed, retrying one by one", size=len(batch), exc_info=True)
        outcomes: list[Outcome] = []
        for prepared in batch:
            try:
                outcomes.append(self._write([prepared], True)[0])
            except Exception as err:
                outcomes.append(err)
        return outcomes

    def _write(self, batch: list[Prepared], discard_on_error: bool) -> list[NewReport | None]:
        with self.sessions() as db:
            return insert_reports(db, batch, self.sink(), discard_on_error, self.limiter)

    def over_limit(self, client: str, now: datetime) -> bool:
        """A read-only look at the client's limit (blocking: call it from a thread)."""
        if self.limiter is None:
            return False
        with self.sessions() as db:
            return self.limiter.used(db.connection(), [client], now)[client[:64]] >= self.limiter.limit

    async def close(self) -> None:
        """Finish what is queued, then stop the thread (called on shutdown, before the engine is
        disposed). Submissions after this start a new thread."""
        with self._lock:
            thread, todo = self._thread, self._queue
            self._thread = self._queue = None
        if thread is None or todo is None:
            return
        todo.put(None)
        await asyncio.to_thread(thread.join)
        await asyncio.sleep(0)  # run the last hand-back callbacks before the caller goes on


def _deliver(results: list[tuple[asyncio.Future[NewReport | None], Outcome]]) -> None:
    """On the event loop: complete the futures of one batch (a cancelled one is left as it is)."""
    for future, outcome in results:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
