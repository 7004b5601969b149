"""The writer's failure paths against a real influxd: 413 splitting, 400 dead letters, spool bounds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from iot_gateway.recorder.config import InfluxSettings
from iot_gateway.recorder.influx import InfluxClient
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.metrics import RecorderMetrics
from iot_gateway.recorder.provision import ensure_schema
from iot_gateway.recorder.spool import Spool
from iot_gateway.recorder.writer import Writer
from tests.support.faultproxy import FaultProxy
from tests.support.recorder import rows
from tests.support.wait import eventually

T = (time.time_ns() // 10**9 - 86400) * 10**9  # yesterday: inside the 90-day raw retention


def _line(i: int, value: str = "1i") -> tuple[int, str, bytes]:
    body = f"relay8,device=d{i % 7},site=t relay_1={value},relay_2=0i {T + i * 1_000_000}"
    return 2, "", body.encode()


async def _run_until_empty(writer: Writer, timeout_s: float = 20) -> None:
    def drained() -> bool:
        writer.wake.set()  # flush now rather than after the flush interval
        return not writer.spool.depth

    task = asyncio.create_task(writer.run())
    try:
        await eventually(drained, timeout_s, step=0.01, what="the spool written out")
    finally:
        task.cancel()


async def _writer(url: str, tmp_path: Path, max_points: int = 1_000_000, **kw: object) -> Writer:
    settings = InfluxSettings.model_validate(
        {"url": url, "flush_interval_ms": 1, "backoff_min_s": 0.05, "backoff_max_s": 0.2, **kw}
    )
    client = InfluxClient(settings)
    await ensure_schema(client, settings, ["relay8"])
    spool = Spool(tmp_path / "spool.sqlite3", max_points)
    return Writer(spool, client, settings, RecorderMetrics())


async def test_413_splits_the_batch_and_loses_nothing(tmp_path: Path) -> None:
    server = InfluxdProcess(tmp_path / "influx", max_body_size=64 * 1024)
    await server.start()
    try:
        writer = await _writer(server.url, tmp_path, batch_points=10_000)
        writer.spool.append([_line(i) for i in range(5000)])  # about 400 KB in one batch
        await _run_until_empty(writer)
        assert rows(server.url, "relay8", "relay_1") == 5000
        assert writer.metrics.write_errors.labels("413")._value.get() >= 1
        assert writer.spool.dead_points() == 0
        await writer.client.aclose()
    finally:
        await server.stop()


async def test_field_type_conflict_keeps_good_points_and_dead_letters_the_bad_one(
    influxd: InfluxdProcess, tmp_path: Path
) -> None:
    writer = await _writer(influxd.url, tmp_path, batch_points=5000)
    writer.spool.append([_line(-1)])  # relay_1 is an integer field from now on
    await _run_until_empty(writer)
    batch = [_line(i, "1.5" if i == 500 else "1i") for i in range(1000)]
    writer.spool.append(batch)
    await _run_until_empty(writer)
    assert rows(influxd.url, "relay8", "relay_1") == 1 + 999
    dead = writer.spool.dead_letters()
    assert len(dead) == 1 and b"relay_1=1.5" in dead[0][2] and "field type conflict" in dead[0][0]
    assert writer.metrics.dead_lettered._value.get() == 2
    # The pipeline is not blocked: the next batch goes straight in.
    writer.spool.append([_line(i) for i in range(1000, 1100)])
    await _run_until_empty(writer, timeout_s=5)
    assert rows(influxd.url, "relay8", "relay_1") == 1100
    await writer.client.aclose()


async def test_full_spool_drops_oldest_and_counts_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_points=100)
    assert spool.append([_line(i) for i in range(40)]) == 0
    assert spool.append([_line(i) for i in range(40, 70)]) == 40  # 140 points: 40 oldest dropped
    assert spool.depth == 100
    batch = spool.peek(10)
    assert batch is not None and batch.lines[0].endswith(f"{T + 20 * 1_000_000}".encode())
    # Rows being written are never dropped; the counter survives a restart.
    assert spool.append([_line(i) for i in range(70, 75)]) == 10
    assert spool.peek(10) is not None
    spool.close()
    again = Spool(tmp_path / "spool.sqlite3", max_points=100)
    assert again.counter("dropped") == 50 and again.depth == 100
    again.close()


async def test_influxdb_unreachable_keeps_everything(tmp_path: Path) -> None:
    settings = InfluxSettings.model_validate({"url": "http://127.0.0.1:9", "timeout_s": 0.5})
    writer = Writer(Spool(tmp_path / "s.sqlite3", 1000), InfluxClient(settings), settings, RecorderMetrics())
    writer.spool.append([_line(i) for i in range(10)])
    task = asyncio.create_task(writer.run())
    try:
        await eventually(
            lambda: writer.metrics.write_errors.labels("InfluxUnavailable")._value.get(), 5, step=0.01
        )
    finally:
        task.cancel()
    assert writer.spool.depth == 20 and writer.spool.dead_points() == 0
    await writer.client.aclose()


async def test_written_counts_a_split_batch_once_after_a_failure_partway(tmp_path: Path) -> None:
    # 413 splits the batch; a 500 on a later half fails the whole batch, which is retried from the
    # start: the halves written before the failure are written again (idempotent) but counted once.
    server = InfluxdProcess(tmp_path / "influx", max_body_size=64 * 1024)
    await server.start()
    writes = 0

    def decide(method: str, path: str) -> str:
        nonlocal writes
        if not path.startswith("/write"):
            return "pass"
        writes += 1
        return "500" if writes == 6 else "pass"

    try:
        async with FaultProxy(server.url, decide) as proxy:
            writer = await _writer(proxy.url, tmp_path, batch_points=10_000)
            writer.spool.append([_line(i) for i in range(5000)])
            await _run_until_empty(writer)
            assert proxy.counts()["500"] == 1 and writer.metrics.write_errors.labels("413")._value.get() >= 2
            assert writer.written == 10_000 and writer.metrics.written._value.get() == 10_000
            assert rows(server.url, "relay8", "relay_1") == 5000
            await writer.client.aclose()
    finally:
        await server.stop()
