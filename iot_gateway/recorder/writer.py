"""The spool -> InfluxDB writer: oldest first, batched by size and time, never dropping silently.

Per response (docs/influxdb.md, "Failure handling"): 204 -> remove the batch; 413 -> split in halves,
a single line still too large is dead-lettered; 400 -> the good lines are already stored, so halves are
re-sent (re-writing a good line overwrites it with itself: source timestamps) until each bad line is
isolated and dead-lettered; 5xx, timeouts, refused connections and other 4xx -> keep the batch, back off
exponentially with jitter up to ``backoff_max_s``; 404 "database not found" -> create it (1.x).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable

import structlog

from iot_gateway.recorder.config import InfluxSettings
from iot_gateway.recorder.influx import InfluxClient, InfluxError, InfluxRejected
from iot_gateway.recorder.metrics import RecorderMetrics
from iot_gateway.recorder.spool import Batch, Spool

log = structlog.get_logger(__name__)


class Writer:
    def __init__(
        self,
        spool: Spool,
        client: InfluxClient,
        settings: InfluxSettings,
        metrics: RecorderMetrics,
        ensure_schema: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.wake = asyncio.Event()
        self._ensure_schema = ensure_schema
        self.healthy = True
        # told of every write outcome (the recorder publishes the change on MQTT)
        self.on_health: Callable[[bool], None] | None = None
        self._relieved = False
        self.written = 0
        self.batches = 0

    async def run(self) -> None:
        backoff = self.settings.backoff_min_s
        while True:
            await self._wait_for_batch()
            batch = self.spool.peek(self.settings.batch_points)
            if batch is None:
                continue
            try:
                written, dead = await self.deliver(batch)
                self._remove(batch, dead)
            except InfluxError as err:
                self.spool.release()
                self._set_health(False, err)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(self.settings.backoff_max_s, backoff * 2)
                if isinstance(err, InfluxRejected) and err.status == 404 and self._ensure_schema:
                    with contextlib.suppress(InfluxError):
                        await self._ensure_schema()
                continue
            except sqlite3.Error as err:
                # The spool's disk is full (the delete needs WAL space) or failing: the batch stays and
                # is written again later, which overwrites it with itself (source timestamps).
                self.spool.release()
                self.metrics.spool_errors.inc()
                log.error("spool_ack_failed", error=str(err), spool=str(self.spool.path))
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(self.settings.backoff_max_s, backoff * 2)
                continue
            # Counted once the batch left the spool: a batch retried after a failure partway through
            # its halves is not counted twice.
            self.written += written
            self.metrics.written.inc(written)
            dead_points = sum(n for _, n, _ in dead)
            if dead_points:
                self.metrics.dead_lettered.inc(dead_points)
            self.batches += 1
            self._set_health(True)
            backoff = self.settings.backoff_min_s
            self.metrics.spool_depth.set(self.spool.depth)
            self.metrics.spool_rows.set(self.spool.rows)

    def _remove(self, batch: Batch, dead: list[tuple[str, int, bytes]]) -> None:
        """Remove a written batch; on a full disk give up the spool's reserve and try once more."""
        try:
            self.spool.ack(batch, dead)
        except sqlite3.Error as err:
            self.metrics.spool_errors.inc()
            released = self.spool.relieve()
            log.warning("spool_full_using_reserve", error=str(err), reserve_released=released)
            self.spool.ack(batch, dead)  # no await in between: the intake cannot take the space first
            self._relieved = True
        if self._relieved:
            self.spool.checkpoint()  # keep the WAL small while space is short
            if self.spool.depth == 0:
                self.spool.restore_reserve()
                self._relieved = False

    def _set_health(self, up: bool, err: Exception | None = None) -> None:
        self.metrics.influx_up.set(1 if up else 0)
        if up != self.healthy:  # log a change of state once
            if up:
                log.info("influx_write_recovered", spool_points=self.spool.depth)
            else:
                log.warning("influx_write_failing", error=str(err), spool_points=self.spool.depth)
        self.healthy = up
        if self.on_health is not None:
            self.on_health(up)

    async def _wait_for_batch(self) -> None:
        """Return when a full batch waits, or ``flush_interval_ms`` after the first point arrived."""
        while self.spool.depth == 0:
            self.wake.clear()
            await self.wake.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.flush_interval_ms / 1000
        while self.spool.depth < self.settings.batch_points:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), remaining)

    async def deliver(self, batch: Batch) -> tuple[int, list[tuple[str, int, bytes]]]:
        """Write one batch: the field values InfluxDB accepted and the dead letters (reason, values,
        line). Nothing is recorded here: the caller commits the dead letters with the removal of the
        batch, so a batch that fails partway and is retried whole counts and dead-letters once."""
        dead: list[tuple[str, int, bytes]] = []
        n = await self._send(batch.lines, batch.counts, batch.rp, dead)
        return n, dead

    async def _send(
        self, lines: list[bytes], counts: list[int], rp: str, dead: list[tuple[str, int, bytes]]
    ) -> int:
        t0 = time.perf_counter()
        try:
            result = await self.client.write(b"\n".join(lines), rp or None)
        except InfluxError as err:
            self.metrics.write_errors.labels(type(err).__name__).inc()
            raise
        finally:
            self.metrics.write_latency.observe(time.perf_counter() - t0)
        if result.status < 300:
            return sum(counts)
        self.metrics.write_errors.labels(str(result.status)).inc()
        if len(lines) == 1:
            dead.append((f"HTTP {result.status}: {result.error}", counts[0], lines[0]))
            log.warning("line_dead_lettered", status=result.status, error=result.error[:300])
            return 0
        half = len(lines) // 2
        first = await self._send(lines[:half], counts[:half], rp, dead)
        return first + await self._send(lines[half:], counts[half:], rp, dead)
