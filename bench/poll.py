"""``bcc bench poll``: one gateway process polling N synthetic Modbus TCP devices x T tags.

Everything runs as separate processes on this machine: Mosquitto, the simulators (``python -m
simulators --synthetic N``), the gateway (``bcc gateway``). The gateway's own figures come from its
/metrics endpoint and from psutil; the ceiling is plain pymodbus block reads against the same
simulators in the same run. Optionally times commands while the gateway polls.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import psutil
import yaml
from pymodbus.client import AsyncModbusTcpClient

from bcc_common.net import free_port
from bcc_common.process import stop_process
from bcc_contract.topics import Topics
from bench.common import ROOT, PahoRoundTrip, pct
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from simulators import synthetic


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+\-]+|NaN)$", line)
        if m:
            key = m.group(1) + (m.group(2) or "")
            out[key] = float(m.group(3))
    return out


def summed(m: dict[str, float], prefix: str) -> float:
    """A counter summed over its labels (``_total`` only: ``_created`` holds each child's start time)."""
    return sum(v for k, v in m.items() if k.startswith(prefix) and k.split("{")[0].endswith("_total"))


def histogram_p99_ms(before: dict[str, float], after: dict[str, float], histogram: str) -> float:
    """p99 of a gateway histogram over the window, from the delta of its buckets (the upper bound of
    the bucket holding p99)."""
    name = f"{histogram}_bucket"
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', k).group(1)), after[k] - before.get(k, 0.0))  # type: ignore[union-attr]
        for k in after
        if k.startswith(name)
    )
    total = buckets[-1][1] if buckets else 0.0
    for le, count in buckets:
        if total and count >= 0.99 * total:
            return le * 1000
    return float("nan")


async def ceiling(endpoints: dict[str, Any], tags: int, seconds: float, clients: int = 4) -> float:
    """Plain pymodbus: ``clients`` concurrent loops reading T registers round-robin over all devices."""
    ports = [ep["port"] for ep in endpoints.values()]
    conns: dict[int, AsyncModbusTcpClient] = {}
    for port in ports:
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        conns[port] = c
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < deadline:
            await conns[ports[i % len(ports)]].read_holding_registers(0, count=tags, device_id=1)
            done += 1
            i += clients

    await asyncio.gather(*(loop(k) for k in range(clients)))
    for c in conns.values():
        c.close()
    return done * tags / seconds


T = Topics()  # the generated site keeps the default base topic


async def py_spy_record(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    """Start py-spy (dev extra) on ``pid`` for ``seconds``: collapsed stacks, for ``bench.profile``."""
    exe = Path(sys.executable).parent / "py-spy"
    return await asyncio.create_subprocess_exec(
        str(exe), "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "100",
        "--format", "raw", "--nonblocking", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def bench_poll(
    devices: int,
    tags: int,
    interval: float,
    seconds: float,
    commands: int,
    change_every_s: float | None = None,
    bulk_ms: int = 0,
    py_spy: Path | None = None,
) -> dict[str, Any]:
    """``change_every_s``: every read-only register changes past the deadband that often (the peer
    harness); None: 10 % of them per second. ``commands`` are spread evenly over the window."""
    secrets = generate_demo_secrets(ROLES)
    with tempfile.TemporaryDirectory(prefix="bcc-bench-poll-") as tmp_s:
        tmp = Path(tmp_s)
        broker = MosquittoProcess(tmp / "mosquitto", credentials=secrets)
        await broker.start()
        change = ["--change-every-s", str(change_every_s)] if change_every_s else []
        sims = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators", "--synthetic", str(devices), "--tags", str(tags), *change,
            stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=2**24,
        )  # fmt: skip
        gw: asyncio.subprocess.Process | None = None
        try:
            assert sims.stdout is not None
            endpoints = json.loads(await asyncio.wait_for(sims.stdout.readline(), 120))["buses"]
            (tmp / "profiles").mkdir()
            (tmp / "profiles" / "synthetic.yaml").write_text(synthetic.profile_yaml(tags, interval))
            site = synthetic.site_dict(devices, [endpoints[f"bus_{i:04d}"]["port"] for i in range(devices)])
            metrics_port = free_port()
            site["mqtt"] = {"url": broker.url, "username": "gateway"}
            site["gateway"] = {"metrics_port": metrics_port, "heartbeat_s": 60}
            if bulk_ms:
                site["gateway"]["telemetry_batch_ms"] = bulk_ms
            (tmp / "site.yaml").write_text(yaml.safe_dump(site))
            env = {**os.environ, "BCC_MQTT_PASSWORD": secrets["gateway"], "BCC_LOG_LEVEL": "WARNING"}
            gw = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bcc", "gateway", "--site", str(tmp / "site.yaml"),
                "--profiles", str(tmp / "profiles"), cwd=ROOT, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            # Two clients: the states (1,500 messages/s at full scale) must not queue the command
            # responses behind them in the broker or in paho's thread, or the harness times itself.
            watcher = PahoRoundTrip(broker.host, broker.port, "readonly", secrets["readonly"], [T.all_state])
            commander = PahoRoundTrip(
                broker.host, broker.port, "operator", secrets["operator"], [T.all_response]
            )
            try:
                # Warm-up: every device has published its state once.
                await asyncio.to_thread(watcher.wait_states, devices, 60.0 + devices / 10)
                gproc, sproc = psutil.Process(gw.pid), psutil.Process(sims.pid)
                spy = await py_spy_record(gw.pid, seconds, py_spy) if py_spy is not None else None
                load0 = os.getloadavg()
                m0, g0, s0, t0 = metrics(metrics_port), gproc.cpu_times(), sproc.cpu_times(), time.monotonic()
                published0 = watcher.state_messages
                rss = 0.0
                cmd_rtts: list[float] = []
                cmd_failures: dict[str, int] = {}
                end = t0 + seconds
                i = 0
                while time.monotonic() < end:
                    rss = max(rss, gproc.memory_info().rss / 2**20)
                    if i < commands:
                        body = orjson.dumps({"tag_000": i % 1000, "transaction": f"c{i}", "ts": time.time()})
                        dev = f"dev_{i % devices:04d}"
                        try:
                            dt, resp = await asyncio.to_thread(
                                commander.request, T.set(dev), body, T.response(dev)
                            )
                        except TimeoutError:  # counted, and as 5 s in the percentiles: a stall is data
                            dt, resp = 5.0, b'{"status": "no_response"}'
                        status = orjson.loads(resp)["status"]
                        if status != "ok":  # e.g. the simulators missed the bus timeout: counted
                            cmd_failures[status] = cmd_failures.get(status, 0) + 1
                        cmd_rtts.append(dt)
                        i += 1
                        # A steady rate: the next command at its slot, whatever this one took.
                        await asyncio.sleep(max(0.0, t0 + i * seconds / commands - time.monotonic()))
                    else:
                        await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))
                m1, g1, s1, t1 = metrics(metrics_port), gproc.cpu_times(), sproc.cpu_times(), time.monotonic()
                published = watcher.state_messages - published0
                load = os.getloadavg()
                if spy is not None:
                    await spy.wait()
            finally:
                watcher.close()
                commander.close()
            await stop_process(gw)
            roof = await ceiling(endpoints, tags, 5.0)
        finally:
            for proc in (gw, sims):
                await stop_process(proc)
            await broker.stop()
    elapsed = t1 - t0
    polls = m1["bcc_gateway_poll_latency_seconds_count"] - m0["bcc_gateway_poll_latency_seconds_count"]
    cpu_s = sum(g1[:2]) - sum(g0[:2])
    result: dict[str, Any] = {
        "benchmark": "poll",
        "devices": devices,
        "tags": tags,
        "interval_s": interval,
        "seconds": round(elapsed, 1),
        "expected_tags_per_s": round(devices * tags / interval),
        "change_every_s": change_every_s,
        "tags_per_s": round(polls * tags / elapsed),
        # What reached a subscriber: every state message carries all the device's tags; less the one
        # state that each timed command's read-back publishes.
        "delivered_tags_per_s": round(max(0, published - len(cmd_rtts)) * tags / elapsed),
        "missed_deadlines": int(
            summed(m1, "bcc_gateway_missed_deadlines") - summed(m0, "bcc_gateway_missed_deadlines")
        ),
        "request_errors": int(
            summed(m1, "bcc_gateway_request_errors") - summed(m0, "bcc_gateway_request_errors")
        ),
        "poll_jitter_p99_ms": histogram_p99_ms(m0, m1, "bcc_gateway_poll_start_jitter_seconds"),
        "gateway_cpu_pct": round(100 * cpu_s / elapsed, 1),
        "gateway_cpu_s": round(cpu_s, 2),  # user + system seconds of the gateway process in the window
        # Less sensitive to a loaded machine than the percentage (other work steals wall time, not this).
        "gateway_cpu_ms_per_1000_tags": round(1000 * cpu_s / max(polls * tags / 1000, 1e-9), 2),
        "gateway_rss_mb": round(rss, 1),
        "simulators_cpu_pct": round(100 * (sum(s1[:2]) - sum(s0[:2])) / elapsed, 1),
        "state_messages_per_s": round(published / max(elapsed, 1e-9)),
        "ceiling_tags_per_s": round(roof),
        "bulk_ms": bulk_ms,
        "load_average_1m": round(load[0], 2),
        "load_average_1m_at_start": round(load0[0], 2),
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    if cmd_rtts:
        result |= {
            "commands": len(cmd_rtts),
            "command_p50_ms": pct(cmd_rtts, 0.5),
            "command_p99_ms": pct(cmd_rtts, 0.99),
            # Inside the gateway (handler to response handed to paho): what the harness adds is the rest.
            "gateway_command_p99_ms": histogram_p99_ms(m0, m1, "bcc_gateway_command_seconds"),
            "command_failures": cmd_failures,
        }
    return result
