"""The recorder service: intake (MQTT -> spool), writer (spool -> InfluxDB) and its own statistics.

Statistics are also written to InfluxDB (measurement ``recorder``) through the spool, so the
"Gateway health" dashboard shows write rate and spool depth even for periods InfluxDB was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import start_http_server

from bcc_common.process import cancel_and_wait
from bcc_contract.topics import Topics
from iot_gateway.recorder.config import RecorderConfig
from iot_gateway.recorder.influx import InfluxClient, InfluxError, InfluxRejected
from iot_gateway.recorder.intake import Intake
from iot_gateway.recorder.lineproto import line
from iot_gateway.recorder.metrics import RecorderMetrics
from iot_gateway.recorder.provision import ensure_schema, site_measurements, verify_schema
from iot_gateway.recorder.schema import Schema
from iot_gateway.recorder.spool import Spool
from iot_gateway.recorder.writer import Writer

log = structlog.get_logger(__name__)


class SchemaMissing(InfluxError):
    """The recorder's (write-only) user found the database or a retention policy missing."""


class Recorder:
    def __init__(self, config: RecorderConfig, spool_path: Path | str | None = None) -> None:
        self.config = config
        settings = config.influx
        self.metrics = RecorderMetrics()
        self.spool = Spool(spool_path or settings.spool_path, settings.spool_max_points, settings.spool_sync)
        self.client = InfluxClient(settings, config.influx_password, config.influx_token)
        self.schema = Schema(config.loaded, Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix))
        self.writer = Writer(self.spool, self.client, settings, self.metrics, self._ensure_schema)
        self.intake = Intake(config, self.schema, self.spool, self.metrics, self.writer.wake.set)
        self.writer.on_health = self.intake.set_influxdb
        self.schema_ready = not (settings.version == "1" and settings.manage_schema)
        # False once InfluxDB refused to let our user create the schema (not an admin): verify only
        self.may_create_schema = True
        self.metrics.spool_depth.set(self.spool.depth)

    async def _ensure_schema(self) -> None:
        settings = self.config.influx
        if self.may_create_schema:
            try:
                await ensure_schema(self.client, settings, site_measurements(self.config.loaded))
                self.schema_ready = True
                self.intake.set_influxdb(True)
                return
            except InfluxRejected as err:
                if err.status != 403:
                    raise
                self.may_create_schema = False
                log.info("influx_schema_not_admin", user=settings.username, error=str(err))
        problems = await verify_schema(self.client, settings)
        if problems:
            log.error(
                "influx_schema_missing",
                problems=problems,
                fix="run `bcc influx provision --site <site file>` as InfluxDB's admin (docs/influxdb.md)",
            )
            raise SchemaMissing("; ".join(problems))
        log.info(
            "influx_schema_verified",
            database=settings.database,
            user=settings.username,
            note="database and retention policies exist; the continuous query is bcc influx provision's",
        )
        self.schema_ready = True
        self.intake.set_influxdb(True)

    async def _schema_loop(self) -> None:
        """Create the database (1.x) before the first write; InfluxDB may still be starting."""
        delay = self.config.influx.backoff_min_s
        while not self.schema_ready:
            try:
                await self._ensure_schema()
            except InfluxError as err:
                log.debug("influx_schema_retry", error=str(err))
                self.intake.set_influxdb(False)
                await asyncio.sleep(delay)
                delay = min(self.config.influx.backoff_max_s, delay * 2)

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.intake.received_points,
            "messages": self.intake.messages,
            "written": self.writer.written,
            "spool_depth": self.spool.depth,
            "dropped": self.spool.counter("dropped"),
            "dead_lettered": self.spool.dead_points(),
            "spool_errors": int(self.metrics.spool_errors._value.get()),
        }

    async def _stats_loop(self) -> None:
        tags = {"site": self.config.loaded.site.site, "instance": self.config.client_id}
        hist = self.metrics.write_latency
        last_sum = last_count = 0.0
        while True:
            await asyncio.sleep(self.config.influx.stats_interval_s)
            total_sum = total_count = 0.0
            for metric in hist.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_sum"):
                        total_sum = sample.value
                    elif sample.name.endswith("_count"):
                        total_count = sample.value
            n = total_count - last_count
            fields: dict[str, int | float] = {
                **{k: int(v) for k, v in self.stats().items()},
                "write_latency_ms": (total_sum - last_sum) / n * 1000 if n else 0.0,
            }
            last_sum, last_count = total_sum, total_count
            body = line("recorder", tags, fields, time.time_ns()).encode()
            try:
                self.spool.append([(len(fields), "", body)])
            except sqlite3.Error:
                self.metrics.spool_errors.inc()  # disk full: this statistics point is skipped
            self.writer.wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or the task is cancelled."""
        stop = stop or asyncio.Event()
        settings = self.config.influx
        log.info(
            "recorder_starting", influx=settings.url, database=settings.database, spool=str(self.spool.path)
        )
        http = None
        if settings.metrics_port is not None:
            http, _thread = start_http_server(
                settings.metrics_port, "127.0.0.1", registry=self.metrics.registry
            )
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._write_loop(), name="recorder-writer"),
                    tg.create_task(self.intake.run(), name="recorder-mqtt"),
                    tg.create_task(self._stats_loop(), name="recorder-stats"),
                    tg.create_task(self.intake.status_loop(), name="recorder-status"),
                ]
                await stop.wait()
                await self.intake.say("offline")  # a clean stop; the last will covers a crash
                await cancel_and_wait(*tasks)
        finally:
            if http is not None:
                http.shutdown()
            await self.client.aclose()
            self.spool.close()
            log.info("recorder_stopped")

    async def _write_loop(self) -> None:
        """MQTT intake spools at once; the writer starts once the database exists."""
        await self._schema_loop()
        await self.writer.run()

    async def drain(self, timeout_s: float) -> None:
        """Wait until the spool is empty (tests, benchmarks, clean shutdown)."""
        async with asyncio.timeout(timeout_s):
            while self.spool.depth:
                self.writer.wake.set()
                await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_recorder(config: RecorderConfig, spool_path: Path | str | None = None) -> Any:
    """Start a recorder in this event loop; yields it once MQTT is connected (tests, demo)."""
    recorder = Recorder(config, spool_path)
    stop = asyncio.Event()
    task = asyncio.create_task(recorder.run(stop))
    try:
        await asyncio.wait_for(recorder.intake.connected.wait(), 10)
        yield recorder
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
