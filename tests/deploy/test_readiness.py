"""The gateway and the recorder as systemd runs them (Type=notify): ``READY=1`` only once connected to
the broker, ``STOPPING=1`` on SIGTERM; and every metric the alert rules use is in their real
exposition (a renamed metric would leave an alert that can never fire)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bcc_common.net import free_port
from devices.loader import DEMO_SITE, load_site
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from simulators.site import SiteSimulator
from tests.support.alert_rules import SYNTHETIC, used_metrics
from tests.support.bcc_process import bcc
from tests.support.gateway import probe, site_dict
from tests.support.wait import eventually


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's; the address goes into ``NOTIFY_SOCKET``."""
    name = f"bcc-test-notify-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        yield sock, "@" + name
    finally:
        sock.close()


async def next_notification(sock: socket.socket, timeout: float = 15.0) -> str:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), timeout)
    return data.decode()


def nothing_pending(sock: socket.socket) -> bool:
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    return False


async def exposition(port: int) -> dict[str, float]:
    """Every sample of ``/metrics`` as ``name{labels}`` -> value (and the bare name -> last value)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = out[s.name] = s.value
    return out


async def healthz(port: int) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code
    except httpx.TransportError:
        return None


def test_alert_rules_use_only_gateway_recorder_and_portal_metrics() -> None:
    """So the two tests below, one per service, and the portal's in tests/portal/test_workers.py
    (test_metrics_of_both_workers_add_up) cover every metric the rules use."""
    for name in used_metrics() - SYNTHETIC:
        assert name.startswith(("bcc_gateway_", "bcc_recorder_", "bcc_portal_")), name


async def test_gateway_ready_only_when_connected_and_exports_the_alerted_metrics(
    room_sim: SiteSimulator, tmp_path: Path
) -> None:
    broker = MosquittoProcess(
        tmp_path / "mosquitto", credentials=generate_demo_secrets(ROLES), port=free_port()
    )
    metrics_port = free_port()
    raw = site_dict(room_sim.site_for_clients(), broker, metrics_port=metrics_port)
    for device in raw["devices"]:
        if device["id"] == "lights_a":  # polls that time out (500 ms) overrun a 500 ms interval
            device["poll_s"] = {"default": 0.5}
    room_sim.device("lights_a").set_fault("no_answer")
    site = tmp_path / "room.yaml"
    site.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with notify_socket() as (sock, address):
        env = {
            "NOTIFY_SOCKET": address,
            "BCC_MQTT_PASSWORD": broker.password("gateway"),
            "BCC_LOG_FORMAT": "json",
        }
        async with bcc(["gateway", "--site", str(site)], env, tmp_path / "gateway.log") as proc:
            # running, the broker not there yet: not ready
            await eventually(lambda: healthz(metrics_port), timeout=15, what="the gateway answers /healthz")
            assert await healthz(metrics_port) == 503
            assert nothing_pending(sock), "READY before the broker connection"
            await broker.start()
            try:
                assert await next_notification(sock) == "READY=1\nSTATUS=connected to the MQTT broker"
                assert await healthz(metrics_port) == 200
                samples = await eventually(
                    lambda: _offline_and_overrun(metrics_port),
                    timeout=20,
                    what="lights_a offline and overrunning",
                )
                wanted = {n for n in used_metrics() if n.startswith("bcc_gateway_")}
                assert wanted and wanted <= set(samples), sorted(wanted - set(samples))
                proc.send_signal(signal.SIGTERM)
                assert await next_notification(sock) == "STOPPING=1"
                assert await asyncio.wait_for(proc.wait(), 15) == 0
            finally:
                await broker.stop()


async def _offline_and_overrun(port: int) -> dict[str, float] | None:
    samples = await exposition(port)
    offline = samples.get('bcc_gateway_breaker_open{device="lights_a"}') == 1
    missed = samples.get('bcc_gateway_missed_deadlines_total{device="lights_a"}', 0) > 0
    return samples if offline and missed else None


async def test_recorder_ready_once_subscribed_and_exports_the_alerted_metrics(tmp_path: Path) -> None:
    broker = MosquittoProcess(
        tmp_path / "mosquitto", credentials=generate_demo_secrets(ROLES), port=free_port()
    )
    metrics_port = free_port()
    raw = load_site(DEMO_SITE).site.model_dump(mode="json", exclude_none=True)
    raw["mqtt"].update(url=broker.url, reconnect_min_s=0.05, reconnect_max_s=0.5)
    # InfluxDB unreachable (nothing listens there): the recorder still starts, spools, and says so
    raw["influxdb"] = {"url": f"http://127.0.0.1:{free_port()}", "metrics_port": metrics_port,
                       "backoff_min_s": 0.05, "backoff_max_s": 0.5}  # fmt: skip
    site = tmp_path / "room.yaml"
    site.write_text(yaml.safe_dump(raw), encoding="utf-8")
    spool = tmp_path / "state" / "spool.sqlite3"
    spool.parent.mkdir()
    with notify_socket() as (sock, address):
        env = {
            "NOTIFY_SOCKET": address,
            "BCC_MQTT_PASSWORD": broker.password("recorder"),
            "BCC_LOG_FORMAT": "json",
        }
        args = ["recorder", "--site", str(site), "--spool", str(spool)]
        async with bcc(args, env, tmp_path / "recorder.log") as proc:
            await eventually(lambda: _answers(metrics_port), timeout=15, what="the recorder answers /metrics")
            assert nothing_pending(sock), "READY before the broker connection"
            await broker.start()
            try:
                assert await next_notification(sock) == "READY=1\nSTATUS=connected to the MQTT broker"
                async with probe(broker, role="portal", subscribe=None) as portal:  # the portal's minute
                    await portal.publish("bcc/reports/backlog", BACKLOG, retain=True)
                samples = await eventually(
                    lambda: _backlog_seen(metrics_port), timeout=15, what="the overdue counts as gauges"
                )
                assert samples['bcc_recorder_reports_overdue{stage="verification"}'] == 1
                assert samples['bcc_recorder_reports_overdue{stage="response"}'] == 2
                assert samples["bcc_recorder_reports_backlog_timestamp_seconds"] == 1795774500.0
                wanted = {n for n in used_metrics() if n.startswith("bcc_recorder_")}
                assert wanted and wanted <= set(samples), sorted(wanted - set(samples))
                assert samples["bcc_recorder_influxdb_up"] == 0
                proc.send_signal(signal.SIGTERM)
                assert await next_notification(sock) == "STOPPING=1"
                assert await asyncio.wait_for(proc.wait(), 15) == 0
            finally:
                await broker.stop()
    assert spool.exists()


BACKLOG = {  # docs/influxdb.md, bcc/reports/backlog
    "ts": "2026-11-27T10:15:00Z",
    "open": {"new": 4, "verified": 2, "dispatched": 7},
    "by_category": {"kesehatan": 3, "perizinan": 10},
    "overdue_verification": 1,
    "overdue_response": 2,
}


async def _backlog_seen(port: int) -> dict[str, float] | None:
    samples = await exposition(port)
    return samples if samples.get("bcc_recorder_reports_backlog_timestamp_seconds", 0) > 0 else None


async def _answers(port: int) -> bool:
    try:
        await exposition(port)
    except httpx.TransportError:
        return False
    return True
