"""``bcc bench recorder``: sustained field values/s from MQTT into InfluxDB, next to the raw ceiling.

Load: N devices of a 30-register profile (the peer-gateway shape of docs/performance.md), each state
message published at QoS 1 through the project's Mosquitto "as the gateway would" (one JSON object
with 30 values and a unique source ``ts``). The recorder runs as its own process (``bcc recorder``).
Ceiling, same run: the same lines pre-built and POSTed straight to ``/write`` in batches of 1,000
lines on one connection. Then InfluxDB is stopped, 1 million values are spooled, and the recorder's
RSS is read while they wait, and the time to drain them once InfluxDB is back.
"""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bcc_common.net import free_port
from bcc_contract.topics import Topics
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.lineproto import iso_to_ns, line
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets

T = Topics()  # the benchmark's site keeps the default base topic
ROOT = Path(__file__).resolve().parents[1]
POINTS = 30
_PROFILE = {
    "model": "bench30",
    "manufacturer": "BCC",
    "label": {"id": "Perangkat uji 30 register", "en": "Benchmark device, 30 registers"},
    "source": "Synthetic: 30 holding registers, as in the peer-gateway comparison of docs/performance.md",
    "points": [
        {"key": f"r{i:02d}", "label": {"id": f"R{i}", "en": f"R{i}"}, "table": "holding_register",
         "address": i, "type": "uint16", "unit": "1"}
        for i in range(POINTS)
    ],
}  # fmt: skip


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload(device: int, seq: int, t0_ms: int) -> bytes:
    body: dict[str, Any] = {f"r{i:02d}": (seq + i) % 65536 for i in range(POINTS)}
    body["ts"] = _iso((t0_ms + seq) * 1_000_000)
    return orjson.dumps(body)


def _bulked(load: list[tuple[str, bytes]], bulk: int) -> list[tuple[str, bytes]]:
    """The same states, ``bulk`` to a message on the bulk telemetry topic (unchanged for 0)."""
    if not bulk:
        return load
    out = []
    for i in range(0, len(load), bulk):
        body: dict[str, list[Any]] = {}
        for topic, payload in load[i : i + bulk]:
            body.setdefault(topic[len(T.base) + 1 :], []).append(orjson.loads(payload))
        out.append((T.bridge_telemetry("bench"), orjson.dumps(body)))  # the site "bench"'s gateway
    return out


class Publisher:
    """paho QoS 1 publisher in its own thread; counts PUBACKs (only they prove delivery)."""

    def __init__(self, host: str, port: int, password: str, ahead: int = 5000) -> None:
        self.ahead = ahead
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-gateway", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set("gateway", password)
        self.client.max_inflight_messages_set(200)
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_publish(self, *_a: Any) -> None:
        self.acked += 1

    def publish(
        self,
        messages: list[tuple[str, bytes]],
        rate_per_s: float,
        consumed: Callable[[], float] | None = None,
    ) -> None:
        """Publish at most ``rate_per_s``; with ``consumed``, stay about ``ahead`` messages ahead of the
        recorder, below the broker's per-client queue (10,000 messages, 64 MiB), where Mosquitto
        would start dropping: the figure is then the rate the recorder sustains."""
        start = next_check = time.monotonic()
        base = consumed() if consumed else 0.0
        for n, (topic, payload) in enumerate(messages):
            while self.acked < n - 2000:  # bounded in-flight window
                time.sleep(0.0005)
            # at most every 50 ms: the recorder answers each poll with its whole /metrics page
            if consumed and time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.05
                while n - (consumed() - base) > self.ahead:
                    time.sleep(0.01)
            delay = start + n / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.client.publish(topic, payload, qos=1)
        while self.acked < len(messages):
            time.sleep(0.001)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _count(url: str, db: str = "bcc") -> int:
    r = _client().get(
        f"{url}/query", params={"db": db, "q": 'SELECT count("r00") FROM "bench30"'}, timeout=30
    )
    series = r.json()["results"][0].get("series", [])
    return sum(int(row[1]) for s in series for row in s["values"])


async def _poll_until(
    read: Callable[[], float], target: float, timeout_s: float, step_s: float
) -> tuple[float, float]:
    """Call ``read`` (in a thread) every ``step_s`` until it gives at least ``target`` or ``timeout_s``
    passed: (the last value, the time it was read)."""
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(read)
        if value >= target:
            break
        await asyncio.sleep(step_s)
    return value, time.monotonic()


async def _wait_count(url: str, target: int, timeout_s: float, db: str = "bcc") -> tuple[int, float]:
    """What count() in InfluxDB says once it reached ``target`` (polled every 200 ms), and when."""
    n, at = await _poll_until(functools.partial(_count, url, db), target, timeout_s, 0.2)
    return int(n), at


async def _wait_written(port: int, values: int, timeout_s: float) -> float:
    """The time at which the recorder's written counter reached ``values`` (polled every 20 ms)."""
    read = functools.partial(_metric, port, "bcc_recorder_points_written_total")
    return (await _poll_until(read, values, timeout_s, 0.02))[1]


_HTTP = threading.local()


def _client() -> httpx.Client:
    """One client per thread: ``httpx.get()`` builds a client, and with it an SSL context from the
    system CA store, on every call; polled every few messages that was a third of this harness's CPU."""
    if not hasattr(_HTTP, "client"):
        _HTTP.client = httpx.Client(timeout=5)
    client: httpx.Client = _HTTP.client
    return client


def _metric(port: int, name: str) -> float:
    for text in _client().get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if text.startswith(name + " "):
            return float(text.split()[1])
    return 0.0


async def bench_recorder(
    devices: int = 100,
    messages: int = 40_000,
    rate: float = 50_000.0,
    receive_maximum: int | None = None,
    bulk: int = 100,
) -> dict[str, Any]:
    """``messages`` device states; with ``bulk`` > 0 (the default, as the shipped sites send them) they
    travel ``bulk`` to an MQTT message on the bulk telemetry topic (``gateway.telemetry_batch_ms``);
    with 0 one message per state on its device topic."""
    secrets = generate_demo_secrets(ROLES)
    with tempfile.TemporaryDirectory(prefix="bcc-bench-rec-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "profiles").mkdir()
        (tmp / "profiles" / "bench30.yaml").write_text(yaml.safe_dump(_PROFILE), encoding="utf-8")
        broker = MosquittoProcess(tmp / "mosquitto", credentials=secrets)
        influx = InfluxdProcess(tmp / "influxdb")
        await broker.start()
        await influx.start()
        metrics_port = free_port()
        site = {
            "site": "bench",
            "mqtt": {"url": broker.url, "username": "gateway"},
            **({"gateway": {"telemetry_batch_ms": 100}} if bulk else {}),
            "buses": [{"name": "b", "type": "tcp", "host": "127.0.0.1", "port": 0}],
            "devices": [
                {"id": f"d{i:03d}", "name": f"d{i}", "profile": "bench30", "bus": "b", "unit": i % 247 + 1}
                for i in range(devices)
            ],
            "influxdb": {
                "url": influx.url,
                "spool_path": str(tmp / "spool.sqlite3"),
                "batch_points": 30_000,
                "flush_interval_ms": 200,
                "metrics_port": metrics_port,
                "backoff_max_s": 1.0,
                "stats_interval_s": 3600,
                **({"receive_maximum": receive_maximum} if receive_maximum else {}),
            },
        }
        if devices > 247:
            raise ValueError("at most 247 devices (one bus)")
        site_file = tmp / "site.yaml"
        site_file.write_text(yaml.safe_dump(site), encoding="utf-8")
        env = {**os.environ, "BCC_MQTT_PASSWORD": secrets["recorder"], "BCC_LOG_LEVEL": "WARNING"}
        rec = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            f"import sys; from bcc.cli import main; sys.exit(main(['recorder', '--site', {str(site_file)!r}, "
            f"'--profiles', {str(tmp / 'profiles')!r}]))",
            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            result = await _run(
                tmp, broker, influx, rec, metrics_port, secrets, devices, messages, rate, bulk
            )
            result["recorder_receive_maximum"] = receive_maximum or "not sent (broker: 20)"
            return result
        finally:
            if rec.returncode is None:
                rec.terminate()
                await rec.wait()
            await influx.stop()
            await broker.stop()


async def _run(
    tmp: Path,
    broker: MosquittoProcess,
    influx: InfluxdProcess,
    rec: asyncio.subprocess.Process,
    metrics_port: int,
    secrets: dict[str, str],
    devices: int,
    messages: int,
    rate: float,
    bulk: int,
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:  # ready: metrics answer and the recorder has subscribed (connects counted)
        try:
            if await asyncio.to_thread(_metric, metrics_port, "bcc_recorder_mqtt_connects_total") >= 1:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or rec.returncode is not None:
            raise RuntimeError("recorder did not start")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # subscriptions follow the connect
    proc = psutil.Process(rec.pid)
    t0_ms = int(time.time() * 1000) - 3_600_000
    load = [(T.state(f"d{n % devices:03d}"), _payload(n % devices, n, t0_ms)) for n in range(messages)]
    sent = _bulked(load, bulk)  # built before the clock starts, like the ceiling's lines
    # ahead: below the broker's per-client queue of 10,000 messages and 64 MiB (bulk: 200 x ~56 kB)
    pub = Publisher(broker.host, broker.port, secrets["gateway"], ahead=200 if bulk else 5000)
    # ---- sustained throughput, MQTT -> InfluxDB
    start = time.monotonic()
    cpu0 = proc.cpu_times()
    consumed = functools.partial(_metric, metrics_port, "bcc_recorder_messages_total")
    await asyncio.to_thread(pub.publish, sent, rate / max(1, bulk), consumed)
    # The clock stops when InfluxDB has accepted the last value (the recorder counts a batch as
    # written on its 204), as the ceiling's stops when its last /write returns; the count() query
    # then checks what is stored. (Polling count() every 200 ms added 0.1 s on average to a run of
    # ~1.5 s: 7 % of the ratio, none of it the recorder's.)
    end = await _wait_written(metrics_port, messages * POINTS, 120)
    cpu1 = proc.cpu_times()
    stored, _ = await _wait_count(influx.url, messages, 30)
    elapsed = end - start
    rss_run = proc.memory_info().rss / 2**20
    # ---- ceiling: the same lines, pre-built, straight to /write (1,000 lines per request)
    lines = []
    for topic, payload in load:
        body = orjson.loads(payload)
        ts = iso_to_ns(body.pop("ts"))
        fields = {k: float(v) for k, v in body.items()}
        lines.append(line("bench30", {"site": "bench", "device": topic[4:]}, fields, ts).encode())
    bodies = [b"\n".join(lines[i : i + 1000]) for i in range(0, len(lines), 1000)]
    async with httpx.AsyncClient(base_url=influx.url, timeout=60) as http:
        await http.post("/query", params={"q": "CREATE DATABASE ceiling"})
        c0 = time.monotonic()
        for body in bodies:
            r = await http.post("/write", params={"db": "ceiling", "precision": "ns"}, content=body)
            r.raise_for_status()
        ceiling_s = time.monotonic() - c0
    # ---- 1 million values waiting in the spool (InfluxDB down), RSS, then the drain
    await influx.stop()
    spool_msgs = 1_000_000 // POINTS + 1
    t1_ms = t0_ms + messages + 1000
    backlog = [(T.state(f"d{n % devices:03d}"), _payload(n % devices, n, t1_ms)) for n in range(spool_msgs)]
    await asyncio.to_thread(pub.publish, _bulked(backlog, bulk), rate / max(1, bulk), consumed)
    wait_until = time.monotonic() + 120
    while (
        await asyncio.to_thread(_metric, metrics_port, "bcc_recorder_spool_depth_points")
        < spool_msgs * POINTS
    ):
        if time.monotonic() > wait_until:
            break
        await asyncio.sleep(0.2)
    depth = await asyncio.to_thread(_metric, metrics_port, "bcc_recorder_spool_depth_points")
    rss_spool = proc.memory_info().rss / 2**20
    await influx.restart()
    d0 = time.monotonic()
    total, d1 = await _wait_count(influx.url, messages + spool_msgs, 180)
    pub.close()
    values = messages * POINTS
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 100
    return {
        "benchmark": "recorder",
        "unit": "field values (30 per device state, one line each)",
        "states_per_mqtt_message": max(1, bulk),
        "devices": devices,
        "messages": messages,
        "points_per_s": round(values / elapsed),
        "lines_per_s": round(messages / elapsed),
        "ceiling_points_per_s": round(values / ceiling_s),
        "ratio_to_ceiling": round((values / elapsed) / (values / ceiling_s), 3),
        "lost": messages
        - min(stored, messages)
        + (messages + spool_msgs - min(total, messages + spool_msgs)),
        "duplicated": max(0, total - messages - spool_msgs),
        "recorder_cpu_percent": round(cpu),
        "recorder_rss_mb": round(max(rss_run, rss_spool), 1),
        "recorder_rss_mb_running": round(rss_run, 1),
        "spool_points_waiting": int(depth),
        "recorder_rss_mb_with_spool": round(rss_spool, 1),
        "drain_points_per_s": round(spool_msgs * POINTS / (d1 - d0)),
        "publish_rate_limit_states_per_s": rate,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
    }
