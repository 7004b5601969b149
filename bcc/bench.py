"""``bcc bench``: benchmarks that print our figure next to the raw ceiling measured in the same run.

``bcc bench command``: command round trip (MQTT set -> gateway -> Modbus write -> read-back -> MQTT
response) while the demo site is polled, against the floor of one raw paho round trip through the same
broker plus a raw pymodbus write and read against the same simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

from bcc.broker import ROLES, MosquittoProcess, generate_demo_secrets
from devices.loader import DEMO_SITE, load_site
from iot_gateway.lifecycle import stop_process

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True)
    cmd = sub.add_parser("command", help="command round trip vs. raw MQTT + Modbus floor")
    cmd.add_argument("--count", type=int, default=300, help="commands to time (default 300)")
    cmd.add_argument("--json", action="store_true", help="print one JSON object only")
    poll = sub.add_parser("poll", help="one gateway polling N synthetic devices vs. plain pymodbus ceiling")
    poll.add_argument("--devices", type=int, default=500, help="Modbus TCP devices (default 500)")
    poll.add_argument("--tags", type=int, default=30, help="registers per device (default 30)")
    poll.add_argument("--interval", type=float, default=1.0, help="poll interval in s (default 1)")
    poll.add_argument("--seconds", type=float, default=30.0, help="measurement window (default 30)")
    poll.add_argument("--commands", type=int, default=200, help="commands timed during the window")
    poll.add_argument("--json", action="store_true", help="print one JSON object only")
    por = sub.add_parser("portal", help="report submissions and the staff queue vs. a trivial endpoint")
    por.add_argument("--reports", type=int, default=100_000, help="reports in the database (default 100,000)")
    por.add_argument("--submissions", type=int, default=400, help="submissions to time (default 400)")
    por.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    por.add_argument("--seconds", type=int, default=6, help="wrk duration per endpoint and round (default 6)")
    por.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of both loads; medians reported (default 3)"
    )
    por.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of both servers (more than 1: use PostgreSQL)"
    )
    por.add_argument("--json", action="store_true", help="print one JSON object only")
    con = sub.add_parser("console", help="simulator change -> operator console (SSE) vs. gateway publish")
    con.add_argument("--count", type=int, default=200, help="value changes to time (default 200)")
    con.add_argument("--poll-s", type=float, default=0.1, help="poll interval of the sensor (default 0.1)")
    con.add_argument("--json", action="store_true", help="print one JSON object only")
    rec = sub.add_parser("recorder", help="MQTT -> recorder -> InfluxDB values/s vs. raw /write ceiling")
    rec.add_argument("--devices", type=int, default=100, help="devices of 30 registers (default 100)")
    rec.add_argument("--messages", type=int, default=40_000, help="device states (default 40,000)")
    rec.add_argument(
        "--rate", type=float, default=50_000.0, help="publish limit, device states/s (default 50,000)"
    )
    rec.add_argument(
        "--bulk",
        type=int,
        default=0,
        help="states per MQTT message on bcc/bridge/telemetry (gateway.telemetry_batch_ms); "
        "0 (default): one message per state on its device topic",
    )
    rec.add_argument("--json", action="store_true", help="print one JSON object only")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


class PahoRoundTrip:
    """Raw paho client: publish and wait for our own message back through the broker."""

    def __init__(self, host: str, port: int, user: str, password: str, topics: list[str]) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.arrived = threading.Event()
        self.last: bytes = b""
        self.expect = ""
        self.reply = b""
        self.online: set[str] = set()
        self.online_seen = threading.Event()
        self.states: set[str] = set()
        self.states_wanted = 1 << 30
        self.states_seen = threading.Event()
        self.state_messages = 0
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the gateway does
        self.client.loop_start()
        for t in topics:
            self.client.subscribe(t, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.last = bytes(msg.payload)
        if msg.topic == self.expect and not self.arrived.is_set():
            self.reply = self.last
            self.arrived.set()
        if msg.topic.count("/") == 1 and not msg.retain:
            self.state_messages += 1
            if len(self.states) < self.states_wanted:
                self.states.add(msg.topic)
                if len(self.states) >= self.states_wanted:
                    self.states_seen.set()
        if msg.payload == b"online":
            self.online.add(msg.topic)
            self.online_seen.set()

    def wait_states(self, devices: int, timeout: float) -> None:
        """Block until ``devices`` distinct state topics have been published (live, not retained)."""
        self.states_wanted = devices
        if len(self.states) < devices and not self.states_seen.wait(timeout):
            raise TimeoutError(f"only {len(self.states)} of {devices} devices published state")
        self.state_messages = 0

    def wait_online(self, topic: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while topic not in self.online:
            if not self.online_seen.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"{topic} never came online")
            self.online_seen.clear()

    def request(self, topic: str, payload: bytes, reply: str, timeout: float = 5.0) -> tuple[float, bytes]:
        self.expect = reply
        self.arrived.clear()
        t0 = time.perf_counter()
        self.client.publish(topic, payload, qos=1)
        if not self.arrived.wait(timeout):
            raise TimeoutError(topic)
        return time.perf_counter() - t0, self.reply

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def modbus_floor(host: str, port: int, unit: int, count: int) -> list[float]:
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
    await client.connect()
    out = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            await client.write_coil(7, bool(i % 2), device_id=unit)
            await client.read_coils(7, count=1, device_id=unit)
            out.append(time.perf_counter() - t0)
    finally:
        client.close()
    return out


async def bench_command(count: int) -> dict[str, Any]:
    loaded = load_site(DEMO_SITE)
    secrets = generate_demo_secrets(ROLES)
    with tempfile.TemporaryDirectory(prefix="bcc-bench-") as tmp:
        broker = MosquittoProcess(Path(tmp) / "mosquitto", credentials=secrets)
        await broker.start()
        sims = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators",
            "--site",
            str(DEMO_SITE),
            "--port",
            "0",
            "--no-physics",
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        gw: asyncio.subprocess.Process | None = None
        try:
            assert sims.stdout is not None
            endpoints = json.loads(await asyncio.wait_for(sims.stdout.readline(), 30))["buses"]
            raw = loaded.site.model_dump(mode="json", exclude_none=True)
            for bus in raw["buses"]:
                bus["port"] = endpoints[bus["name"]]["port"]
            raw["mqtt"].update(url=broker.url, username="gateway")
            site_file = Path(tmp) / "site.yaml"
            site_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
            env = {**os.environ, "BCC_MQTT_PASSWORD": secrets["gateway"], "BCC_LOG_LEVEL": "WARNING"}
            gw = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bcc",
                "gateway",
                "--site",
                str(site_file),
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            rt = PahoRoundTrip(
                broker.host,
                broker.port,
                "operator",
                secrets["operator"],
                ["bcc/lights_a/response", "bcc/bridge/state", "bcc/lights_a/availability"],
            )
            try:
                await asyncio.to_thread(rt.wait_online, "bcc/lights_a/availability", 20.0)
                cmd_rtts: list[float] = []
                for i in range(count + 10):
                    body = orjson.dumps({"relay_1": "ON" if i % 2 else "OFF", "transaction": f"b{i}"})
                    dt, resp = await asyncio.to_thread(
                        rt.request, "bcc/lights_a/set", body, "bcc/lights_a/response"
                    )
                    assert orjson.loads(resp)["status"] == "ok", resp
                    if i >= 10:  # warm-up
                        cmd_rtts.append(dt)
            finally:
                rt.close()
            # Floor, same run: raw paho round trip through the same broker + raw pymodbus write + read.
            # One raw paho hop = publish and receive our own message through the broker; a command
            # crosses the broker twice (set in, response out), so a floor sample is two hops.
            ping = PahoRoundTrip(
                broker.host, broker.port, "homeassistant", secrets["homeassistant"], ["bcc/bench/set"]
            )
            try:
                ping_rtts = []
                for _ in range(count):
                    first, _ = await asyncio.to_thread(ping.request, "bcc/bench/set", b"{}", "bcc/bench/set")
                    second, _ = await asyncio.to_thread(ping.request, "bcc/bench/set", b"{}", "bcc/bench/set")
                    ping_rtts.append(first + second)
            finally:
                ping.close()
            ep = endpoints["room_rs485"]
            mb = await modbus_floor(ep["host"], ep["port"], 1, count)
        finally:
            for proc in (gw, sims):
                await stop_process(proc)
            await broker.stop()
    floor = [a + b for a, b in zip(sorted(ping_rtts), sorted(mb), strict=False)]
    return {
        "benchmark": "command",
        "count": count,
        "p50_ms": pct(cmd_rtts, 0.50),
        "p99_ms": pct(cmd_rtts, 0.99),
        "mean_ms": round(statistics.fmean(cmd_rtts) * 1000, 3),
        "floor_p50_ms": pct(floor, 0.50),
        "floor_p99_ms": pct(floor, 0.99),
        "mqtt_rtt_p50_ms": pct(ping_rtts, 0.50),
        "modbus_write_read_p50_ms": pct(mb, 0.50),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
    }


def run(args: argparse.Namespace) -> int:
    if args.bench == "command":
        result = asyncio.run(bench_command(args.count))
    elif args.bench == "poll":
        from bcc.bench_poll import bench_poll

        result = asyncio.run(bench_poll(args.devices, args.tags, args.interval, args.seconds, args.commands))
    elif args.bench == "portal":
        from portal.bench import run_bench

        result = asyncio.run(
            run_bench(
                args.reports,
                args.submissions,
                db_url=args.database_url,
                seconds=args.seconds,
                workers=args.workers,
                rounds=args.rounds,
            )
        )
    elif args.bench == "console":
        from portal.bench_console import bench_console

        result = asyncio.run(bench_console(args.count, args.poll_s))
    elif args.bench == "recorder":
        from iot_gateway.recorder.bench import bench_recorder

        result = asyncio.run(bench_recorder(args.devices, args.messages, args.rate, bulk=args.bulk))
    else:  # pragma: no cover - argparse restricts choices
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0
