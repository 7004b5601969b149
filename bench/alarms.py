"""``bcc bench alarms``: the alarm evaluator (``bcc alarms``, its own process) judging N synthetic devices
x T points, each device publishing its state every ``interval`` seconds (the issue's workload: 500 x 30 at
1 s), every point under a high-limit rule.

Each interval a few devices cross a limit (and the previous ones return): the latency is from the publish
of the state message the evaluator reads to the arrival of the alarm event (``raised`` or ``cleared``) at
a subscriber; the floor is the same broker's delivery of the device state messages themselves to that
subscriber. With ``bulk_ms`` (default 100, the shipped sites' ``gateway.telemetry_batch_ms``) the
publisher behaves as the gateway does: every state on its retained device topic and, every ``bulk_ms``,
the window's states in one message on ``<base>/bridge/telemetry``, which the evaluator reads;
``state_to_event_p*_ms`` then adds the time a state waited in its window. The evaluator's CPU and memory
come from psutil. Targets (issue 20): p99 < 50 ms, CPU < 10 % of one core.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bcc_common.process import stop_process
from bcc_common.timefmt import iso_ms
from bcc_contract.topics import Topics
from bench.common import ROOT, pct
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from simulators import synthetic

T = Topics()
GATEWAY = "synthetic"  # the gateway id of the synthetic site (its site id): its bulk telemetry topic
LIMIT = 60_000
NORMAL = 1_000
TARGET_P99_MS = 50.0
TARGET_CPU_PCT = 10.0


def rules_dict(tags: int) -> dict[str, Any]:
    return {
        "site": "synthetic",
        "rules": [
            {
                "id": f"high_{i:03d}",
                "kind": "high",
                "devices": "*",
                "point": f"tag_{i:03d}",
                "limit": LIMIT,
                "deadband": 100,
                "severity": "low",
                "message": {"id": f"Tag {i} tinggi", "en": f"Tag {i} high"},
            }
            for i in range(tags)
        ],
    }


class Watcher:
    """Receives alarm events and state messages; times them against the publisher's clock."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("readonly", password)
        self.client.on_message = self._on_message
        self.sent: dict[tuple[str, str], float] = {}  # (alarm, event) -> publish time of the cause
        self.stated: dict[tuple[str, str], float] = {}  # (alarm, event) -> its device state's publish
        self.totals: list[float] = []
        self.state_sent: dict[str, float] = {}  # device -> publish time of its latest state
        self.latencies: list[float] = []
        self.floor: list[float] = []
        self.status = ""
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.active = threading.Event()
        self.measuring = False
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe([(T.alarm_events, 1), (T.all_state, 1), (T.alarm_service("bench"), 1)])

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        if msg.topic == T.alarm_service("bench"):
            if msg.payload == b"active":
                self.active.set()
            return
        with self.lock:
            if msg.topic == T.alarm_events:
                event = orjson.loads(msg.payload)
                key = (event["alarm"], event["event"])
                sent, stated = self.sent.pop(key, None), self.stated.pop(key, None)
                if sent is not None and self.measuring:
                    self.latencies.append(now - sent)
                    if stated is not None:
                        self.totals.append(now - stated)
                    self.arrived.notify_all()
            elif not msg.retain:
                sent = self.state_sent.get(msg.topic)
                if sent is not None and self.measuring:
                    self.floor.append(now - sent)

    def wait_events(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.latencies) < count and (left := deadline - time.monotonic()) > 0:
                self.arrived.wait(left)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Window:
    """The gateway's bulk telemetry (iot_gateway/bulk.py): states collected for ``bulk_ms``, then one
    message ``{"<device>": [<state>, ...]}``; the causes in it are timed from that publish."""

    def __init__(self, client: mqtt.Client, watcher: Watcher, bulk_ms: int) -> None:
        self.client, self.watcher, self.period = client, watcher, bulk_ms / 1000
        self.states: dict[str, list[bytes]] = {}
        self.causes: list[tuple[tuple[str, str], float]] = []
        self.opened = time.monotonic()

    def add(self, dev: str, body: bytes, causes: list[tuple[str, str]], stated: float) -> None:
        self.states.setdefault(dev, []).append(body)
        self.causes += [(key, stated) for key in causes]

    def due(self) -> bool:
        return time.monotonic() - self.opened >= self.period

    def flush(self) -> None:
        if self.states:
            parts = [
                b'"' + d.encode() + b'":[' + b",".join(states) + b"]" for d, states in self.states.items()
            ]
            now = time.monotonic()
            with self.watcher.lock:
                for key, stated in self.causes:
                    self.watcher.sent[key] = now
                    self.watcher.stated[key] = stated
            self.client.publish(T.bridge_telemetry(GATEWAY), b"{" + b",".join(parts) + b"}", qos=1)
        self.states, self.causes, self.opened = {}, [], time.monotonic()


def publish_rounds(
    client: mqtt.Client,
    watcher: Watcher,
    devices: int,
    tags: int,
    interval: float,
    rounds: int,
    trips: int,
    bulk_ms: int = 0,
) -> int:
    """Publish every device's state once per interval, evenly spread; ``trips`` devices per round cross
    a limit and the previous round's go back. Returns the number of transitions caused."""
    names = [f"dev_{i:04d}" for i in range(devices)]
    high: dict[str, int] = {}  # device -> tag index above the limit
    transitions = 0
    window = Window(client, watcher, bulk_ms) if bulk_ms else None
    start = time.monotonic()
    for r in range(rounds):
        tripping = {names[(r * trips + k) % devices]: (r + k) % tags for k in range(trips)}
        for i, dev in enumerate(names):
            slot = start + (r + i / devices) * interval
            if window is not None and window.due():
                window.flush()
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            values = {f"tag_{t:03d}": NORMAL + (r + t) % 7 for t in range(tags)}
            cause: list[tuple[str, str]] = []
            if dev in high and dev not in tripping:
                cause.append((f"high_{high.pop(dev):03d}.{dev}", "cleared"))
            if dev in tripping:
                tag = tripping[dev]
                if high.get(dev) not in (None, tag):
                    cause.append((f"high_{high[dev]:03d}.{dev}", "cleared"))
                if high.get(dev) != tag:
                    cause.append((f"high_{tag:03d}.{dev}", "raised"))
                high[dev] = tag
                values[f"tag_{tag:03d}"] = LIMIT + 1_000
            body = orjson.dumps({**values, "ts": iso_ms(time.time())})
            now = time.monotonic()
            with watcher.lock:
                if window is None:
                    for key in cause:
                        watcher.sent[key] = now
                watcher.state_sent[T.state(dev)] = now
            client.publish(T.state(dev), body, qos=1, retain=True)
            if window is not None:
                window.add(dev, body, cause, now)
            transitions += len(cause)
    if window is not None:
        window.flush()
    return transitions


async def bench_alarms(
    devices: int, tags: int, interval: float, seconds: float, trips: int, bulk_ms: int = 100
) -> dict[str, Any]:
    secrets = generate_demo_secrets(ROLES)
    with tempfile.TemporaryDirectory(prefix="bcc-bench-alarms-") as tmp_s:
        tmp = Path(tmp_s)
        broker = MosquittoProcess(tmp / "mosquitto", credentials=secrets)
        await broker.start()
        evaluator: asyncio.subprocess.Process | None = None
        try:
            (tmp / "profiles").mkdir()
            (tmp / "profiles" / "synthetic.yaml").write_text(synthetic.profile_yaml(tags, interval))
            site = synthetic.site_dict(devices)
            site["mqtt"] = {"url": broker.url}
            if bulk_ms:
                site["gateway"] = {**site.get("gateway", {}), "telemetry_batch_ms": bulk_ms}
            (tmp / "site.yaml").write_text(yaml.safe_dump(site))
            (tmp / "rules.yaml").write_text(yaml.safe_dump(rules_dict(tags)))
            env = {**os.environ, "BCC_MQTT_PASSWORD": secrets["alarms"]}
            env.pop("BCC_ALARMS_DATABASE_URL", None)
            evaluator = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bcc", "--log-level", "WARNING", "alarms",
                "--site", str(tmp / "site.yaml"), "--profiles", str(tmp / "profiles"),
                "--rules", str(tmp / "rules.yaml"), "--state", str(tmp / "state.sqlite3"),
                "--instance", "bench",
                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            watcher = Watcher(broker.host, broker.port, secrets["readonly"])
            publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            publisher.username_pw_set("gateway", secrets["gateway"])
            publisher.max_inflight_messages_set(1000)
            publisher.connect(broker.host, broker.port)
            publisher.loop_start()
            try:
                if not await asyncio.to_thread(watcher.active.wait, 60):
                    raise TimeoutError("the evaluator did not become active within 60 s")
                # Warm-up: two rounds (every device's first state, and the first trips).
                await asyncio.to_thread(
                    publish_rounds, publisher, watcher, devices, tags, interval, 2, trips, bulk_ms
                )
                proc = psutil.Process(evaluator.pid)
                watcher.measuring = True
                c0, t0 = proc.cpu_times(), time.monotonic()
                rounds = max(1, round(seconds / interval))
                transitions = await asyncio.to_thread(
                    publish_rounds, publisher, watcher, devices, tags, interval, rounds, trips, bulk_ms
                )
                c1, t1 = proc.cpu_times(), time.monotonic()
                rss = proc.memory_info().rss / 2**20
                # the last events of the window may still be on their way
                await asyncio.to_thread(watcher.wait_events, transitions, 10.0)
            finally:
                publisher.loop_stop()
                publisher.disconnect()
                watcher.close()
        finally:
            await stop_process(evaluator)
            await broker.stop()
    elapsed = t1 - t0
    lat, floor, totals = watcher.latencies, watcher.floor, watcher.totals
    return {
        "benchmark": "alarms",
        "devices": devices,
        "points": tags,
        "alarms": devices * tags,
        "interval_s": interval,
        "bulk_ms": bulk_ms,
        "input_messages_per_s": round((1000 / bulk_ms) if bulk_ms else devices / interval),
        "seconds": round(elapsed, 1),
        "states_per_s": round(devices * rounds / elapsed),
        "points_per_s": round(devices * tags * rounds / elapsed),
        "transitions": transitions,
        "events_timed": len(lat),
        "event_p50_ms": pct(lat, 0.5) if lat else None,
        "event_p99_ms": pct(lat, 0.99) if lat else None,
        "state_to_event_p50_ms": pct(totals, 0.5) if totals else None,
        "state_to_event_p99_ms": pct(totals, 0.99) if totals else None,
        "floor_state_p50_ms": pct(floor, 0.5) if floor else None,
        "floor_state_p99_ms": pct(floor, 0.99) if floor else None,
        "evaluator_cpu_pct": round(100 * (sum(c1[:2]) - sum(c0[:2])) / elapsed, 1),
        "evaluator_rss_mb": round(rss, 1),
        "target_p99_ms": TARGET_P99_MS,
        "target_cpu_pct": TARGET_CPU_PCT,
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
