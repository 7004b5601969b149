"""Home Assistant discovery (validated by Home Assistant's own schemas), SIGHUP reload, health endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway import discovery
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, site_dict, with_ts
from tests.support.paths import ROOT

HA_VALIDATOR = Path(__file__).parent / "ha" / "validate_discovery.py"


@pytest.mark.timeout(1800)
def test_every_discovery_payload_passes_home_assistant_schemas(ha_python: str, tmp_path: Path) -> None:
    loaded = load_site(DEMO_SITE)
    topics = Topics()
    payloads = {
        topics.discovery(discovery.node_id(loaded.site.site, d.id)): discovery.device_config(
            loaded.site.site, d, loaded.profile_of(d), topics, loaded.site.gateway_id
        )
        for d in loaded.site.devices
    }
    (tmp_path / "payloads.json").write_text(json.dumps(payloads), encoding="utf-8")
    result = subprocess.run(
        [ha_python, str(HA_VALIDATOR), str(tmp_path / "payloads.json")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    points = sum(len(loaded.profile_of(d).points) for d in loaded.site.devices)
    assert f"checked {points} components of 6 devices, 0 problems" in result.stdout
    # After Home Assistant's own merge of device-level options, every entity is at QoS 1.
    assert f'components by qos: {{"1": {points}}}' in result.stdout
    platforms = {c["platform"] for p in payloads.values() for c in p["components"].values()}
    assert platforms == {"switch", "select", "sensor", "binary_sensor"}
    wall = payloads[topics.discovery(discovery.node_id(loaded.site.site, "wall"))]["components"]
    assert wall["layout"]["options"] == ["wide", "split_2", "split_3", "split_4", "split_7"]
    env = payloads[topics.discovery(discovery.node_id(loaded.site.site, "env_front"))]["components"]
    assert (
        env["temperature"] | {"device_class": "temperature", "unit_of_measurement": "°C"}
        == env["temperature"]
    )


async def test_discovery_sent_on_connect_and_when_home_assistant_restarts(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    topic = "homeassistant/device/bcc_bcc_room_lights_a/config"
    async with (
        probe(mosquitto, role="homeassistant", subscribe="homeassistant/#") as ha,
        running_gateway(cfg),
    ):
        first = await ha.wait_for(topic)
        assert first["components"]["relay_1"]["platform"] == "switch"
        assert first["availability"][1]["topic"] == "bcc/lights_a/availability"
        mark = ha.mark()
        await ha.publish("homeassistant/status", "online")
        again = await ha.wait_for(topic, since=mark)
        assert again == first
        assert len(ha.all(topic, since=mark)) == 1


def _site_without_lights_b_plus_new(loaded: Any, broker: MosquittoProcess) -> dict[str, Any]:
    raw = site_dict(loaded, broker)
    raw["devices"] = [d for d in raw["devices"] if d["id"] != "lights_b"]
    extra = dict(next(d for d in raw["devices"] if d["id"] == "lights_a"))
    extra.update(id="lights_c", name="Lampu C", unit=9)
    raw["devices"].append(extra)
    return raw


async def test_reload_adds_and_removes_devices_without_writes_or_reconnect(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    loaded = room_sim.site_for_clients()
    cfg = gateway_config(loaded, mosquitto)
    async with probe(mosquitto, role="homeassistant", subscribe="#") as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_b", lambda s: "relay_1" in s)
        polls_before = gw.devices["lights_a"].polls_ok
        mark = p.mark()
        new_site = site_from_dict(_site_without_lights_b_plus_new(loaded, mosquitto), loaded.profiles)
        new_cfg = type(cfg)(loaded=new_site, mqtt=cfg.mqtt, password=cfg.password)
        result = await gw.reload(new_cfg)
        assert result == {"added": ["lights_c"], "removed": ["lights_b"], "changed": []}
        # Removed: discovery, state and availability cleared (empty retained payloads).
        await p.wait_for("homeassistant/device/bcc_bcc_room_lights_b/config", lambda v: v == "", since=mark)
        await p.wait_for("bcc/lights_b", lambda v: v == "", since=mark)
        # Added: discovered; unit 9 is not served, so it goes offline (and the others keep polling).
        await p.wait_for("homeassistant/device/bcc_bcc_room_lights_c/config", lambda v: v != "", since=mark)
        await p.wait_for("bcc/lights_c/availability", lambda v: v == "offline", since=mark, timeout=10)
        assert gw.devices["lights_a"].polls_ok > polls_before
        assert gw.metrics.mqtt_reconnects._value.get() == 1
    for dev in room_sim.devices.values():
        assert dev.writes == [], dev.id


@pytest.mark.slow
async def test_sighup_reload_and_cleanup_after_restart(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """SIGHUP applies the edited site file in place; a restart with a smaller site removes leftovers."""
    loaded = room_sim.site_for_clients()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_dict(loaded, mosquitto, metrics_port=0)), encoding="utf-8")
    env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("gateway"), "BCC_LOG_FORMAT": "json"}
    cmd = [sys.executable, "-m", "bcc", "gateway", "--site", str(site_file)]
    async with probe(mosquitto, role="homeassistant", subscribe="#") as p:
        log = (tmp_path / "gw.log").open("wb")
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env, stderr=log)
        try:
            await p.wait_for("bcc/lights_b", lambda s: "relay_1" in s, timeout=10)
            raw = _site_without_lights_b_plus_new(loaded, mosquitto)
            raw["gateway"]["metrics_port"] = 0
            site_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
            mark = p.mark()
            proc.send_signal(signal.SIGHUP)
            await p.wait_for(
                "homeassistant/device/bcc_bcc_room_lights_b/config", lambda v: v == "", since=mark
            )
            await p.wait_for(
                "homeassistant/device/bcc_bcc_room_lights_c/config", lambda v: v != "", since=mark
            )
            assert "offline" not in p.all("bcc/bridge/bcc_room/state", since=mark)  # no session drop
            # A broken file is refused and the running site kept.
            site_file.write_text("site: [", encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            mark = p.mark()
            await p.publish("bcc/lights_c/set", with_ts({"no_such_point": 1, "transaction": "alive"}))
            resp = await p.wait_for("bcc/lights_c/response", since=mark)
            assert resp["status"] == "rejected"  # lights_c still known: the running site was kept
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)
            log.close()
        text = (tmp_path / "gw.log").read_text()
        assert "reload_refused" in text and "site_reloaded" in text
        # Restart with the original site: lights_c (announced by the last run) is cleaned up.
        site_file.write_text(yaml.safe_dump(site_dict(loaded, mosquitto)), encoding="utf-8")
        mark = p.mark()
        log = (tmp_path / "gw2.log").open("wb")
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env, stderr=log)
        try:
            await p.wait_for(
                "homeassistant/device/bcc_bcc_room_lights_c/config", lambda v: v == "", since=mark
            )
            await p.wait_for("bcc/lights_c", lambda v: v == "", since=mark)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.send_signal(signal.SIGUSR1)
                await asyncio.sleep(1)  # time to write the stack dump before the kill (failure path only)
                proc.kill()
                raise
            finally:
                log.close()
    for dev in room_sim.devices.values():
        assert dev.writes == [], dev.id


async def test_bridge_health_counters(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, health_period_s=0.5)
    room_sim.device("env_back").set_fault("exception", code=4)
    async with probe(mosquitto) as p, running_gateway(cfg):
        health = await p.wait_for(
            "bcc/bridge/bcc_room/health", lambda h: h.get("request_errors_total", 0) >= 1
        )
        assert health["devices"] == 6 and health["mqtt_connected"] is True
        assert health["polls_per_s"] > 0 and health["poll_latency_ms_mean"] > 0
        assert health["max_queue_depth"] >= 0 and "missed_deadlines_total" in health


async def test_metrics_and_healthz(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, metrics_port=0)
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_1": "ON"}))
        await p.wait_for("bcc/lights_a/response", since=mark)
        base = f"http://127.0.0.1:{gw.health.port}"

        def fetch(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode()

        status, text = await asyncio.to_thread(fetch, "/metrics")
        assert status == 200
        for name in (
            "bcc_gateway_poll_latency_seconds_bucket",
            "bcc_gateway_poll_start_jitter_seconds_count",
            'bcc_gateway_commands_total{status="ok"} 1.0',
            "bcc_gateway_breaker_open",
            "bcc_gateway_mqtt_connects_total 1.0",
            "bcc_gateway_bus_queue_depth",
        ):
            assert name in text, name
        status, body = await asyncio.to_thread(fetch, "/healthz")
        assert status == 200
        health = json.loads(body)
        assert health["mqtt_connected"] is True and health["devices"] == 6
        assert (await asyncio.to_thread(fetch, "/nope"))[0] == 404
