"""MQTT 3.1.1 and 5, TLS, and the offline configuration check."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bcc_common.net import free_port
from mosquitto import MosquittoProcess, TlsFiles
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, with_ts
from tests.support.paths import FIXTURES, ROOT


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_command_over_both_protocols(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, protocol: str
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, mqtt={"protocol": protocol})
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_2": "ON", "transaction": f"v{protocol}"}))
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "ok" and resp["transaction"] == f"v{protocol}"
        assert room_sim.device("lights_a").get_point("relay_2") is True


def make_cert(folder: Path) -> Path:
    """A self-signed certificate valid for IP 127.0.0.1 (it is its own CA)."""
    folder.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(folder / "server.key"), "-out", str(folder / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


async def test_gateway_over_tls(room_sim: SiteSimulator, tmp_path: Path) -> None:
    certs = make_cert(tmp_path / "tls")
    files = TlsFiles(free_port(), certs / "server.crt", certs / "server.crt", certs / "server.key")
    async with MosquittoProcess(tmp_path / "broker", tls=files) as broker:
        tls_url = f"mqtts://127.0.0.1:{files.port}"
        cfg = gateway_config(
            room_sim.site_for_clients(), broker, mqtt={"url": tls_url, "tls": {"ca_file": str(files.cafile)}}
        )
        async with probe(broker) as p, running_gateway(cfg) as gw:
            state = await p.wait_for("bcc/lights_a", lambda s: "relay_1" in s)
            assert state["relay_1"] == "OFF"
            assert gw.link.settings.uses_tls


def check_config(site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bcc", "gateway", "--site", str(site), "--check-config"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_lists_every_problem_and_opens_no_socket() -> None:
    result = check_config(FIXTURES / "sites" / "bad_many.yaml")
    assert result.returncode == 2
    assert "3 problems" in result.stderr
    for expected in ("unknown profile 'nosuch'", "unknown bus 'nobus'", "buses.b.baudrate"):
        assert expected in result.stderr


def test_check_config_requires_a_password_source(tmp_path: Path) -> None:
    demo = ROOT / "devices" / "sites" / "bcc_room.yaml"
    missing = check_config(demo)
    assert missing.returncode == 2
    assert "BCC_MQTT_PASSWORD" in missing.stderr
    ok = check_config(demo, BCC_MQTT_PASSWORD="s3cret-from-env")
    assert ok.returncode == 0, ok.stderr
    assert "6 devices on 2 buses" in ok.stdout
    bad_url = check_config(demo, BCC_MQTT_PASSWORD="x", BCC_MQTT_URL="http://nowhere")
    assert bad_url.returncode == 2 and "scheme must be mqtt" in bad_url.stderr


async def test_priority_lock_serves_commands_before_waiting_polls() -> None:
    from iot_gateway.hub import PRIORITY_COMMAND, PRIORITY_POLL, PriorityLock

    lock = PriorityLock()
    order: list[str] = []
    await lock.acquire(PRIORITY_POLL)  # a poll holds the bus

    async def user(name: str, prio: int) -> None:
        await lock.acquire(prio)
        order.append(name)
        lock.release()

    tasks = [asyncio.create_task(user(f"poll{i}", PRIORITY_POLL)) for i in range(3)]
    await asyncio.sleep(0)  # let the polls queue up first
    tasks.append(asyncio.create_task(user("command", PRIORITY_COMMAND)))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["command", "poll0", "poll1", "poll2"]
