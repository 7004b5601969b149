"""Publishing and counting helpers shared by the recorder tests."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import orjson

from devices.loader import LoadedSite
from mosquitto import MosquittoProcess
from tests.support.influx import influxql

# One hour ago, whole seconds: source times inside the raw retention policy whatever the clock says.
T0 = datetime.fromtimestamp(int(time.time()) - 3600, UTC)


def per_device(loaded: LoadedSite) -> LoadedSite:
    """``loaded`` with bulk telemetry off: its recorder reads one topic per device, which is what
    ``publish_as_gateway`` feeds (the shipped sites turn ``gateway.telemetry_batch_ms`` on)."""
    gateway = loaded.site.gateway.model_copy(
        update={"telemetry_batch_ms": None, "telemetry_spool_path": None}
    )
    return dataclasses.replace(loaded, site=loaded.site.model_copy(update={"gateway": gateway}))


def iso(ms: int, base: datetime = T0) -> str:
    return (base + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def meter_state(i: int, base: datetime = T0) -> bytes:
    """A state of ``meter_main`` (sdm630, 12 values) at a unique source time, as the gateway sends it."""
    keys = ["voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3"]
    keys += ["power_l1", "power_l2", "power_l3", "power_total", "frequency", "energy_import"]
    body: dict[str, Any] = {k: 200.0 + (i % 97) + n / 10 for n, k in enumerate(keys)}
    body["ts"] = iso(i, base)
    return orjson.dumps(body)


async def publish_as_gateway(
    broker: MosquittoProcess,
    messages: Callable[[int], tuple[str, bytes]],
    count: int,
    rate_per_s: float,
    client_id: str = "test-gateway",
) -> int:
    """Publish ``count`` QoS 1 messages at ``rate_per_s`` as the gateway role; rides out broker restarts."""
    sent = 0
    start = time.monotonic()
    while sent < count:
        try:
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                username=broker.account("gateway", -1),
                password=broker.password("gateway"),
                identifier=client_id,
                clean_session=False,
                max_inflight_messages=100,
            ) as client:
                while sent < count:
                    due = start + sent / rate_per_s
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing of the load, not a readiness wait
                    topic, payload = messages(sent)
                    await client.publish(topic, payload, qos=1, retain=False, timeout=5)
                    sent += 1
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)  # broker restarting: reconnect
    return sent


def rows(url: str, measurement: str, field: str, where: str = "") -> int:
    series = influxql(url, f'SELECT count("{field}") FROM "raw"."{measurement}" {where}', absent_ok=True)
    return sum(int(r[1]) for s in series for r in s["values"])


def distinct_times(url: str, measurement: str, field: str, where: str = "") -> int:
    series = influxql(url, f'SELECT "{field}" FROM "raw"."{measurement}" {where}', absent_ok=True)
    return len({r[0] for s in series for r in s["values"]})
