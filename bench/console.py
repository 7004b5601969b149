"""``bcc bench console``: time from a value changing in the simulator to the value appearing in a
connected console client (server-sent events), with the gateway's own publish latency (simulator ->
state message at a raw MQTT subscriber) measured on the same changes in the same run.

Everything is real and local: Mosquitto with the project's config, the demo room's simulators, the gateway
and the portal (under uvicorn, its own thread) in this process. ``env_front`` is polled every
``poll_s`` (default 0.1 s) for the run; its illuminance register is changed ``count`` times, each change
past the deadband, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway.config import GatewayConfig, resolve_mqtt
from iot_gateway.service import Gateway
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from portal.config import PortalMqttSettings, Settings
from portal.db import make_engine, upgrade
from portal.main import create_app
from portal.runtime import runtime_of
from portal.services import users
from simulators import start_site

DEVICE = "env_front"
POINT = "illuminance"
REGISTER = 4  # input register of illuminance in the envsensor profile (lx, deadband 5)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


class _Watcher:
    """A raw paho subscriber (role ``readonly``) noting when each illuminance value arrived."""

    def __init__(self, broker: MosquittoProcess, password: str) -> None:
        self.seen: dict[int, float] = {}
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("readonly", password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(Topics().state(DEVICE), qos=1)
        self.ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        value = json.loads(msg.payload).get(POINT)
        if isinstance(value, int | float):
            self.seen.setdefault(int(value), now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def bench_console(count: int = 200, poll_s: float = 0.1) -> dict[str, Any]:
    creds = generate_demo_secrets(ROLES)
    with tempfile.TemporaryDirectory(prefix="bcc-bench-console-") as tmp:
        broker = MosquittoProcess(Path(tmp) / "mosquitto", credentials=creds)
        await broker.start()
        sim = await start_site(load_site(DEMO_SITE), port=0, physics=False)
        server: uvicorn.Server | None = None
        thread: threading.Thread | None = None
        watcher: _Watcher | None = None
        stop = asyncio.Event()
        gw_task: asyncio.Task[None] | None = None
        try:
            loaded = sim.site_for_clients()
            raw = loaded.site.model_dump(mode="json", exclude_none=True)
            raw["mqtt"] = {**raw["mqtt"], "url": broker.url, "username": "gateway"}
            raw["gateway"].pop("telemetry_spool_path", None)  # bulk telemetry's pending states: memory
            for dev in raw["devices"]:
                if dev["id"] == DEVICE:
                    dev["poll_s"] = {"default": poll_s}
                    for bus in raw["buses"]:  # a bus timeout may not exceed the poll interval
                        if bus["name"] == dev["bus"]:
                            bus["timeout_ms"] = min(bus["timeout_ms"], int(poll_s * 800))
            site = site_from_dict(raw, loaded.profiles)
            mqtt_settings, password, problems = resolve_mqtt(
                site.site.mqtt, {"BCC_MQTT_PASSWORD": creds["gateway"]}, "<bench>"
            )
            assert not problems, problems
            gateway = Gateway(GatewayConfig(loaded=site, mqtt=mqtt_settings, password=password))
            gw_task = asyncio.create_task(gateway.run(stop))

            db_url = f"sqlite:///{Path(tmp) / 'portal.db'}"
            engine = make_engine(db_url)
            upgrade(engine)
            engine.dispose()
            settings = Settings(
                database_url=db_url,
                secret_key=secrets.token_hex(32),
                media_dir=Path(tmp) / "media",
                cookie_secure=False,
                mqtt=PortalMqttSettings(host=broker.host, port=broker.port, password=creds["portal"]),
            )
            app = create_app(settings)
            runtime = runtime_of(app)
            login_password = secrets.token_urlsafe(16)
            with runtime.sessions() as db:
                user = users.create_user(
                    db, runtime.reference, "bench.operator", "operator", login_password, datetime.now(UTC)
                )
                token, _ = users.start_session(db, user, datetime.now(UTC), 1.0)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 10
            while not server.started:  # uvicorn offers no event to wait on
                assert time.monotonic() < deadline, "uvicorn did not start"
                await asyncio.sleep(0.01)
            watcher = _Watcher(broker, creds["readonly"])
            assert await asyncio.to_thread(watcher.ready.wait, 10), "the raw subscriber did not connect"
            arrived: dict[int, float] = {}
            streaming = asyncio.Event()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", cookies={"bcc_session": token}, timeout=30
            ) as http:

                async def pump() -> None:
                    async with http.stream("GET", "/konsol/events") as r:
                        kind = ""
                        async for line in r.aiter_lines():
                            if line.startswith("event: "):
                                kind = line[7:]
                                if kind == "snapshot":
                                    streaming.set()
                            elif line.startswith("data: ") and kind == "state":
                                data = json.loads(line[6:])
                                value = data["state"].get(POINT)
                                if data["device"] == DEVICE and isinstance(value, int | float):
                                    arrived.setdefault(int(value), time.perf_counter())

                reader = asyncio.create_task(pump())
                await asyncio.wait_for(streaming.wait(), 30)
                phase = random.Random(6)
                device = sim.device(DEVICE)
                # Wait until the console shows the device at all, then time each change.
                deadline = time.monotonic() + 30
                while DEVICE not in runtime.room.snapshot()["states"]:
                    assert time.monotonic() < deadline, "the console never saw the device"
                    await asyncio.sleep(0.05)
                end_to_end: list[float] = []
                publish: list[float] = []
                for i in range(count + 10):
                    value = 1000 + 10 * i
                    # A change lands anywhere in the poll cycle, as real changes do.
                    await asyncio.sleep(phase.uniform(0, poll_s))
                    start = time.perf_counter()
                    await device.set_registers("input_register", REGISTER, [value])
                    deadline = time.monotonic() + 10
                    while value not in arrived:
                        assert time.monotonic() < deadline, f"value {value} never reached the console"
                        await asyncio.sleep(0.001)
                    if i >= 10:  # warm-up
                        end_to_end.append(arrived[value] - start)
                        publish.append(watcher.seen.get(value, arrived[value]) - start)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            if watcher is not None:
                watcher.close()
            if server is not None:
                server.should_exit = True
            if thread is not None:
                await asyncio.to_thread(thread.join, 10)
            stop.set()
            if gw_task is not None:
                await asyncio.wait_for(gw_task, 10)
            await sim.stop()
            await broker.stop()
    return {
        "benchmark": "console",
        "count": count,
        "poll_s": poll_s,
        "p50_ms": _pct(end_to_end, 0.50),
        "p99_ms": _pct(end_to_end, 0.99),
        "publish_p50_ms": _pct(publish, 0.50),
        "publish_p99_ms": _pct(publish, 0.99),
        "console_overhead_p99_ms": _pct([e - p for e, p in zip(end_to_end, publish, strict=True)], 0.99),
        "target_p99_ms": 250,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
    }
