"""Reliability tests C3 (InfluxDB answers 500 or times out) and C9 (the spool's disk is full).

C3 puts a fault-injecting proxy (tests/support/faultproxy.py) in front of the real influxd; C9 runs the
recorder as its own process with its spool on a 2 MB tmpfs (a mount namespace, when the kernel allows
one) or under a file-size limit (``RLIMIT_FSIZE``: writes past it fail with EFBIG, as a full disk fails
with ENOSPC).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from bcc_common.net import free_port
from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from tests.support.faultproxy import FaultProxy
from tests.support.influx import recorder_config, recorder_site_file
from tests.support.paths import ROOT
from tests.support.recorder import distinct_times, meter_state, per_device, publish_as_gateway, rows
from tests.support.wait import eventually

LOADED = per_device(load_site(DEMO_SITE))


def meter(i: int) -> tuple[str, bytes]:
    return "bcc/meter_main", meter_state(i)


@pytest.mark.slow
async def test_c3_500s_and_timeouts_are_retried_with_backoff_nothing_lost(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # 84 states/s of the 12-value meter (about 1,000 field values/s) for 15 s. Writes: 20 % answered 500
    # (half of them after InfluxDB stored the points), 5 % never answered (half after storing them:
    # the retry re-writes stored points). In the middle, 3 s in which every write gets 500.
    rng = random.Random(3)
    outage = False

    def decide(method: str, path: str) -> str:
        if not path.startswith("/write"):
            return "pass"  # schema queries
        if outage:
            return "500"
        r = rng.random()
        if r < 0.10:
            return "500"
        if r < 0.20:
            return "500_after"
        if r < 0.225:
            return "hang"
        if r < 0.25:
            return "hang_after"
        return "pass"

    rate, total = 84, 84 * 15
    async with FaultProxy(influxd.url, decide) as proxy:
        cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path, batch_points=600, timeout_s=0.3)
        cfg = type(cfg)(
            cfg.loaded, cfg.mqtt, cfg.mqtt_password, cfg.influx.model_copy(update={"url": proxy.url})
        )
        async with running_recorder(cfg) as rec:
            load = asyncio.create_task(publish_as_gateway(mosquitto, meter, total, rate))
            await asyncio.sleep(6)  # random faults under load
            outage, start = True, time.monotonic()
            await asyncio.sleep(3)  # every write refused
            attempts = [t for t, _m, p, f in proxy.log if t >= start and p.startswith("/write")]
            influx_up = rec.metrics.influx_up._value.get()
            outage = False
            assert await asyncio.wait_for(load, 60) == total
            done = time.monotonic()
            await eventually(
                lambda: rows(influxd.url, "sdm630", "power_total") >= total, timeout=30, step=0.2
            )
            catch_up_s = time.monotonic() - done
            await rec.drain(10)
            errors = {k: rec.metrics.write_errors.labels(k)._value.get() for k in ("InfluxUnavailable",)}
    faults = proxy.counts()
    assert all(faults[f] >= 1 for f in ("pass", "500", "500_after", "hang", "hang_after")), faults
    assert errors["InfluxUnavailable"] >= faults["500"] + faults["500_after"]
    # Backoff: 0.05 s doubling up to 0.5 s (x0.5-1 jitter) allows at most ~16 attempts in 3 s; without
    # backoff there would be hundreds. The gaps grow.
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 3 <= len(attempts) <= 20, attempts
    assert max(gaps) >= 0.2 and gaps[-1] > gaps[0], gaps
    assert influx_up == 0
    # Nothing lost, nothing duplicated; the backlog clears well within 30 s.
    assert rows(influxd.url, "sdm630", "power_total") == total
    assert distinct_times(influxd.url, "sdm630", "power_total") == total
    assert catch_up_s < 30


def _small_fs_command() -> list[str] | None:
    """``unshare`` prefix that runs a command with a fresh 2 MB tmpfs at the spool directory, if allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return [unshare, "-rm", "sh", "-c"] if probe.returncode == 0 else None


def _metric(port: int, name: str) -> float:
    for text in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if text.startswith(name + " "):
            return float(text.split()[1])
    return -1.0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
async def test_c9_spool_disk_full_counts_errors_does_not_crash_and_recovers(
    how: str, mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    prefix = _small_fs_command() if how == "tmpfs" else None
    if how == "tmpfs" and prefix is None:
        pytest.skip("no unprivileged mount namespace here; the rlimit variant covers the same path")
    spool_dir = tmp_path / "spooldir"
    spool_dir.mkdir()
    port = free_port()
    site = recorder_site_file(
        LOADED,
        mosquitto,
        influxd,
        tmp_path,
        spool_path=str(spool_dir / "spool.sqlite3"),
        flush_interval_ms=50,
        batch_points=1200,
        metrics_port=port,
    )
    env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("recorder"), "BCC_LOG_FORMAT": "json"}
    recorder = [sys.executable, "-m", "bcc", "recorder", "--site", str(site)]
    limit = 2 * 1024 * 1024

    def set_fsize() -> None:  # runs in the child before exec: soft limit only, so it can be raised
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    await influxd.stop()  # InfluxDB down: the spool grows until the disk is full
    if prefix is not None:
        script = f"mount -t tmpfs -o size={limit} tmpfs {spool_dir} && exec " + " ".join(recorder)
        proc = await asyncio.create_subprocess_exec(
            *prefix, script, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    else:
        proc = await asyncio.create_subprocess_exec(
            *recorder, cwd=ROOT, env=env, preexec_fn=set_fsize,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    assert proc.stderr is not None
    events: list[dict[str, object]] = []

    async def read_log() -> None:
        assert proc.stderr is not None
        async for raw_line in proc.stderr:
            try:
                events.append(orjson.loads(raw_line))
            except orjson.JSONDecodeError:
                events.append({"event": raw_line.decode(errors="replace")})

    reader = asyncio.create_task(read_log())
    try:
        await eventually(lambda: any(e.get("event") == "recorder_mqtt_connected" for e in events), 15)
        # About 1.2 KB per spooled state: 2 MB are full after ~1,700 states; 3,000 are published.
        total = 3000
        load = asyncio.create_task(publish_as_gateway(mosquitto, meter, total, 1000))
        await eventually(lambda: any(e.get("event") == "spool_write_failed" for e in events), 30, 0.1)
        await asyncio.sleep(1)  # retries against the full disk
        assert proc.returncode is None, "the recorder must not exit on a full disk"
        assert _metric(port, "bcc_recorder_spool_errors_total") >= 2
        failed = next(e for e in events if e.get("event") == "spool_write_failed")
        # ENOSPC: "database or disk is full"; EFBIG (file-size limit): "disk I/O error".
        assert "full" in str(failed["error"]) or "I/O" in str(failed["error"]), failed
        # Logged once per episode (space may come and go as the WAL is truncated), not once per retry.
        episodes = sum(e.get("event") == "spool_write_failed" for e in events)
        assert episodes <= sum(e.get("event") == "spool_write_recovered" for e in events) + 1
        # Space comes back: InfluxDB returns and the writer drains the spool (tmpfs: freed pages are
        # reused), or the file-size limit is lifted. Nothing published meanwhile may be lost.
        await influxd.restart()
        if prefix is None:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        assert await asyncio.wait_for(load, 60) == total
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= total, timeout=60, step=0.25)
        assert any(e.get("event") == "spool_write_recovered" for e in events)
        assert _metric(port, "bcc_recorder_spool_ok") == 1
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
        await reader
    assert rows(influxd.url, "sdm630", "power_total") == total
    assert distinct_times(influxd.url, "sdm630", "power_total") == total
