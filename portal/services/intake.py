"""Group commit for citizen submissions: concurrent requests share one transaction and one thread hop.

Each submission still gets its answer only after its own rows are committed (the tracking code a
citizen sees is always stored). While one batch is being written in a worker thread, the next
submissions queue up; the batch after that takes all of them (at most ``max_batch``). Under light load
a batch is a single report, so latency is that of a plain insert; under heavy load the per-report cost
of the transaction, the commit and the thread hop is shared (docs/performance.md, "Portal").

A batch that fails is retried one report at a time, so that one bad row (or a tracking-code collision)
fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.orm import Session, sessionmaker

from portal.services.events import EventSink
from portal.services.ratelimit import RateLimiter
from portal.services.reports import NewReport, Prepared, insert_reports

log = structlog.get_logger("portal.intake")


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
        self._pending: list[tuple[Prepared, asyncio.Future[NewReport | None]]] = []
        self._drain: asyncio.Task[None] | None = None
        self.batches = 0
        self.reports = 0

    async def submit(self, prepared: Prepared) -> NewReport | None:
        """Store ``prepared``; returns the stored report once its transaction has committed, or None
        when the rate limit refused its client (``prepared.client``)."""
        future: asyncio.Future[NewReport | None] = asyncio.get_running_loop().create_future()
        self._pending.append((prepared, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run(), name="portal-report-writer")
        # shield: a client that disconnects must not cancel a write already in progress for others
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                stored = await asyncio.to_thread(self._write, [p for p, _ in batch], len(batch) == 1)
            except Exception as err:
                if len(batch) == 1:
                    if not batch[0][1].done():
                        batch[0][1].set_exception(err)
                    continue
                log.warning("batch insert failed, retrying one by one", size=len(batch), exc_info=True)
                for prepared, future in batch:
                    try:
                        one = await asyncio.to_thread(self._write, [prepared], True)
                    except Exception as err:
                        if not future.done():
                            future.set_exception(err)
                    else:
                        if not future.done():
                            future.set_result(one[0])
                continue
            self.batches += 1
            self.reports += len(batch)
            for (_, future), report in zip(batch, stored, strict=True):
                if not future.done():
                    future.set_result(report)

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
        """Finish what is queued (called on shutdown, before the engine is disposed)."""
        while self._drain is not None and not self._drain.done():
            await asyncio.wait([self._drain])
