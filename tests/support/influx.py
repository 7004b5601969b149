"""Pytest plugin: a real influxd (Debian 1.6.7) per test on a free loopback port, throwaway data dirs,
ready when ``/ping`` answers 204 (about 0.1 s), plus helpers to build a recorder against it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from devices.loader import LoadedSite
from iot_gateway.recorder.config import InfluxSettings, RecorderConfig, build_config
from iot_gateway.recorder.influxd import InfluxdProcess, find_influxd
from mosquitto import MosquittoProcess


@pytest.fixture
async def influxd(tmp_path: Path) -> AsyncIterator[InfluxdProcess]:
    """A running influxd; ``influxd.url``, ``influxd.restart()``, ``influxd.stop()``."""
    if find_influxd() is None:
        pytest.fail("influxd not installed: run scripts/sysdeps.sh (Debian package: influxdb)")
    server = InfluxdProcess(tmp_path / "influxdb")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def recorder_config(
    loaded: LoadedSite,
    broker: MosquittoProcess,
    influx: InfluxdProcess,
    tmp_path: Path,
    mqtt: dict[str, Any] | None = None,
    **settings: Any,
) -> RecorderConfig:
    """A recorder config for ``loaded`` pointed at the test broker and influxd (fast retries)."""
    raw: dict[str, Any] = {
        "url": influx.url,
        "spool_path": str(tmp_path / "spool.sqlite3"),
        "flush_interval_ms": 50,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.5,
        "timeout_s": 2.0,
        "mqtt_username": broker.account("recorder"),
        **settings,
    }
    mqtt_settings = loaded.site.mqtt.model_copy(
        update={"url": broker.url, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5, **(mqtt or {})}
    )
    site = loaded.site.model_copy(
        update={"mqtt": mqtt_settings, "influxdb": InfluxSettings.model_validate(raw)}
    )
    env = {"BCC_MQTT_PASSWORD": broker.password(raw["mqtt_username"])}
    return build_config(LoadedSite(site, loaded.profiles, loaded.path), env, "<test>")


def recorder_site_file(
    loaded: LoadedSite, broker: MosquittoProcess, influx: InfluxdProcess, tmp_path: Path, **settings: Any
) -> Path:
    """``tmp_path/site.yaml``: ``loaded`` pointed at the test broker and influxd (fast retries, the spool
    in ``tmp_path``), for a recorder started as a process or a command reading the site file."""
    raw = loaded.site.model_dump(mode="json", exclude_none=True)
    raw["mqtt"].update(url=broker.url, reconnect_min_s=0.05, reconnect_max_s=0.5)
    raw["influxdb"] = {
        "url": influx.url,
        "spool_path": str(tmp_path / "spool.sqlite3"),
        "flush_interval_ms": 20,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.5,
        **settings,
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def influxql(url: str, q: str, db: str = "bcc", absent_ok: bool = False) -> list[dict[str, Any]]:
    """Run one InfluxQL statement synchronously; the ``series`` of the first result (may be empty).

    With ``absent_ok`` a database or retention policy that the recorder has not created yet reads as
    no data (a poll that starts before the recorder's provisioning), not as an error.
    """
    r = httpx.get(f"{url}/query", params={"db": db, "q": q, "epoch": "ns"}, timeout=10)
    r.raise_for_status()
    result = orjson.loads(r.content)["results"][0]
    if "error" in result:
        if absent_ok and re.search(r"(database|retention policy) not found", result["error"]):
            return []
        raise AssertionError(f"{q}: {result['error']}")
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def count_rows(url: str, measurement: str, field: str, where: str = "") -> int:
    """Number of stored points with ``field`` set (``count()`` over all time)."""
    series = influxql(url, f'SELECT count("{field}") FROM {measurement} {where}', absent_ok=True)
    return sum(int(row[1]) for s in series for row in s["values"])
