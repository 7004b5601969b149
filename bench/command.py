"""``bcc bench command``: command round trip (MQTT set -> gateway -> Modbus write -> read-back -> MQTT
response) while the demo site is polled, against the floor of one raw paho round trip through the same
broker plus a raw pymodbus write and read against the same simulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from bcc_common.process import stop_process
from bcc_contract.topics import Topics
from bench.common import ROOT, PahoRoundTrip, modbus_floor, pct
from devices.loader import DEMO_SITE, load_site
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets

T = Topics()  # the demo site's base topic


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
            raw["gateway"].pop("telemetry_spool_path", None)  # bulk telemetry's pending states: memory
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
                [T.response("lights_a"), T.bridge_state(loaded.site.gateway_id), T.availability("lights_a")],
            )
            try:
                await asyncio.to_thread(rt.wait_online, T.availability("lights_a"), 20.0)
                cmd_rtts: list[float] = []
                for i in range(count + 10):
                    on = "ON" if i % 2 else "OFF"
                    body = orjson.dumps({"relay_1": on, "transaction": f"b{i}", "ts": time.time()})
                    dt, resp = await asyncio.to_thread(
                        rt.request, T.set("lights_a"), body, T.response("lights_a")
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
                broker.host, broker.port, "homeassistant", secrets["homeassistant"], [T.set("bench")]
            )
            try:
                ping_rtts = []
                for _ in range(count):
                    first, _ = await asyncio.to_thread(ping.request, T.set("bench"), b"{}", T.set("bench"))
                    second, _ = await asyncio.to_thread(ping.request, T.set("bench"), b"{}", T.set("bench"))
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
