"""Nothing lost, nothing duplicated: InfluxDB down under load, the recorder SIGKILLed mid-batch, and
the broker restarted, each with a count of rows against a count of messages published."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from tests.support.influx import recorder_config, recorder_site_file
from tests.support.paths import ROOT
from tests.support.recorder import distinct_times, meter_state, per_device, publish_as_gateway, rows
from tests.support.wait import eventually

LOADED = per_device(load_site(DEMO_SITE))


def meter(i: int) -> tuple[str, bytes]:
    return "bcc/meter_main", meter_state(i)


@pytest.mark.slow
async def test_influxdb_down_30_s_under_1000_points_per_s(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # 84 states/s of the 12-value meter = 1,008 field values/s; InfluxDB is stopped for 30 s.
    rate, total = 84, 84 * 40
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path, batch_points=1000)
    async with running_recorder(cfg) as rec:
        load = asyncio.create_task(publish_as_gateway(mosquitto, meter, total, rate))
        await eventually(lambda: rec.writer.written > 0, timeout=10)
        await influxd.stop()
        await asyncio.sleep(30)  # the outage itself
        spooled = rec.spool.depth
        await influxd.restart()
        assert await asyncio.wait_for(load, 60) == total
        await rec.drain(30)
        assert spooled >= 25 * rate * 12  # the outage really was spooled
    assert rows(influxd.url, "sdm630", "power_total") == total  # 0 lost, 0 duplicated
    assert distinct_times(influxd.url, "sdm630", "power_total") == total


@pytest.mark.slow
async def test_recorder_sigkilled_mid_batch_10_times(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    site = recorder_site_file(LOADED, mosquitto, influxd, tmp_path, batch_points=600)
    env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("recorder"), "BCC_LOG_FORMAT": "json"}
    total = 4000
    rng = random.Random(4)
    load: asyncio.Task[int] | None = None
    kills = 0
    while kills < 10:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bcc", "recorder", "--site", str(site),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        async with asyncio.timeout(15):
            while b"recorder_mqtt_connected" not in await proc.stderr.readline():
                pass
        if load is None:  # the recorder's session exists now: start the load
            load = asyncio.create_task(publish_as_gateway(mosquitto, meter, total, 400))
        await asyncio.sleep(rng.uniform(0.2, 0.6))  # random kill point while batches are in flight
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        kills += 1
    assert load is not None
    assert await asyncio.wait_for(load, 60) == total
    # A last, clean run with the same spool and session drains everything.
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path)
    async with running_recorder(cfg) as rec:
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= total, timeout=30, step=0.2)
        await rec.drain(10)
    assert rows(influxd.url, "sdm630", "power_total") == total
    assert distinct_times(influxd.url, "sdm630", "power_total") == total


@pytest.mark.slow
async def test_broker_restart_loses_nothing(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    total = 2000
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path)
    async with running_recorder(cfg) as rec:
        load = asyncio.create_task(publish_as_gateway(mosquitto, meter, total, 400))
        await eventually(lambda: rec.writer.written > 0, timeout=10)
        await mosquitto.restart()
        assert await asyncio.wait_for(load, 60) == total
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= total, timeout=30, step=0.2)
        await rec.drain(10)
        assert rec.metrics.mqtt_connects._value.get() >= 2
    assert rows(influxd.url, "sdm630", "power_total") == total
    assert distinct_times(influxd.url, "sdm630", "power_total") == total


async def test_recorder_statistics_are_recorded(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path, stats_interval_s=0.2)
    async with running_recorder(cfg) as rec:
        await publish_as_gateway(mosquitto, meter, 50, 1000)
        await eventually(lambda: rows(influxd.url, "recorder", "written") >= 2, timeout=10, step=0.1)
        await rec.drain(5)
        stats = rec.stats()
    assert stats["received"] == 600 and stats["dropped"] == 0 and stats["dead_lettered"] == 0
    assert rows(influxd.url, "sdm630", "power_total") == 50
