"""Several gateways on one broker and one base topic, each owning the devices of its site file
(docs/mqtt.md "Fleet"): per-gateway bridge topics and inventories, commands answered only by the owner,
and a gateway claiming a device a live gateway owns refuses to start, naming both, before polling.

Real Mosquitto with the project's config (one account per gateway), our simulators, the real CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from bcc_contract.fleet import FleetConflict
from devices.loader import LoadedSite, load_site
from iot_gateway.service import Gateway
from mosquitto import MosquittoProcess
from simulators import SiteSimulator, start_site
from tests.support.gateway import Probe, gateway_config, probe, running_gateway, site_dict, with_ts
from tests.support.paths import ROOT

SITES = ROOT / "tests" / "fixtures" / "sites"
NORTH, SOUTH, OVERLAP = (SITES / f"fleet_{name}.yaml" for name in ("north", "south", "overlap"))


@contextlib.asynccontextmanager
async def simulated(path: Path) -> AsyncIterator[SiteSimulator]:
    sim = await start_site(load_site(path), port=0, physics=False)
    try:
        yield sim
    finally:
        await sim.stop()


def not_owned(gw: Gateway) -> float:
    return gw.metrics.registry.get_sample_value("bcc_gateway_commands_not_owned_total") or 0.0


async def command(p: Probe, device: str, txn: str, point: str = "relay_1") -> dict[str, object]:
    mark = p.mark()
    await p.publish(f"bcc/{device}/set", {point: "ON", "transaction": txn, "ts": time.time()})
    resp: dict[str, object] = await p.wait_for(
        f"bcc/{device}/response", lambda r: r.get("transaction") == txn, 10, mark
    )
    return resp


@pytest.mark.broker_accounts(gateway=2)
async def test_two_gateways_each_announce_and_answer_only_their_own_devices(
    mosquitto: MosquittoProcess,
) -> None:
    async with (
        simulated(NORTH) as north_sim,
        simulated(SOUTH) as south_sim,
        probe(mosquitto, role="homeassistant") as p,  # reads everything, may send commands
        running_gateway(gateway_config(north_sim.site_for_clients(), mosquitto, account=1)) as north,
        running_gateway(gateway_config(south_sim.site_for_clients(), mosquitto, account=2)) as south,
    ):
        assert (north.gateway_id, south.gateway_id) == ("north", "south_gw")
        # Each inventory lists only its own site's devices; each gateway says online on its own topic.
        inv_north = await p.wait_for("bcc/bridge/north/devices")
        inv_south = await p.wait_for("bcc/bridge/south_gw/devices")
        assert inv_north == {"site": "north", "gateway": "north", "devices": ["north_env", "north_lights"]}
        assert inv_south == {"site": "south", "gateway": "south_gw", "devices": ["south_lights"]}
        for gw in ("north", "south_gw"):
            await p.wait_for(f"bcc/bridge/{gw}/state", lambda v: v == "online")
        # Home Assistant: each device is available only while its own gateway is.
        await p.subscribe("homeassistant/device/+/config")
        config = await p.wait_for("homeassistant/device/bcc_south_south_lights/config")
        assert config["availability"][0]["topic"] == "bcc/bridge/south_gw/state"

        # A command is answered once, by its owner; the other gateway ignores it (no "unknown device").
        before = not_owned(north), not_owned(south)
        resp = await command(p, "south_lights", "s-1")
        assert resp["status"] == "ok", resp
        resp = await command(p, "north_lights", "n-1")  # also a barrier: s-1 had time for a 2nd answer
        assert resp["status"] == "ok", resp
        await command(p, "south_lights", "s-2", "relay_2")
        assert len(p.all("bcc/south_lights/response")) == 2 and len(p.all("bcc/north_lights/response")) == 1
        assert (not_owned(north), not_owned(south)) == (before[0] + 2, before[1] + 1)
        assert [w.address for w in south_sim.device("south_lights").writes] == [0, 1]
        assert [w.address for w in north_sim.device("north_lights").writes] == [0]

        # A device nobody owns: nobody answers (the console knows from the inventories, not the gateways).
        mark = p.mark()
        await p.publish("bcc/nobody/set", with_ts({"relay_1": "ON", "transaction": "x-1"}))
        await command(p, "north_lights", "n-2", "relay_2")  # barrier
        assert p.all("bcc/nobody/response", since=mark) == []
        # Health per gateway too.
        assert south.topics.bridge_health(south.gateway_id) == "bcc/bridge/south_gw/health"


def overlap_site(sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path) -> Path:
    site_file = tmp_path / "overlap.yaml"
    raw = site_dict(sim.site_for_clients(), mosquitto, account=2)
    site_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return site_file


@pytest.mark.broker_accounts(gateway=2)
async def test_a_gateway_claiming_a_live_gateways_device_refuses_to_start(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    async with (
        simulated(NORTH) as north_sim,
        simulated(OVERLAP) as annex_sim,
        probe(mosquitto, role="readonly") as p,
    ):
        site_file = overlap_site(annex_sim, mosquitto, tmp_path)
        env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("gateway")}
        async with running_gateway(gateway_config(north_sim.site_for_clients(), mosquitto, account=1)):
            await p.wait_for("bcc/bridge/north/devices")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bcc", "gateway", "--site", str(site_file),
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 2, err.decode()
            message = err.decode()
            assert "gateway 'annex' refuses to start" in message, message
            assert "north_lights owned by gateway 'north' (online)" in message, message
            assert "annex_lights" not in message  # only the devices in conflict are named
            # Nothing was polled (nor announced) by the refused gateway.
            for device in ("north_lights", "annex_lights"):
                assert list(annex_sim.device(device).reads) == [], device
            assert p.all("bcc/bridge/annex/state") == [] and p.all("bcc/bridge/annex/devices") == []
            assert p.all("bcc/annex_lights") == []

        # The north gateway stopped (its state says offline): the device may move to another gateway.
        await p.wait_for("bcc/bridge/north/state", lambda v: v == "offline")
        loaded: LoadedSite = annex_sim.site_for_clients()
        async with running_gateway(gateway_config(loaded, mosquitto, account=2)):
            inv = await p.wait_for("bcc/bridge/annex/devices")
            assert inv["devices"] == ["annex_lights", "north_lights"]


@pytest.mark.broker_accounts(gateway=2)
async def test_the_refusal_happens_in_process_too(mosquitto: MosquittoProcess) -> None:
    """``Gateway.run`` raises FleetConflict itself (not an exception group): callers can catch it."""
    async with (
        simulated(NORTH) as north_sim,
        simulated(OVERLAP) as annex_sim,
        running_gateway(gateway_config(north_sim.site_for_clients(), mosquitto, account=1)),
    ):
        gw = Gateway(gateway_config(annex_sim.site_for_clients(), mosquitto, account=2))
        with pytest.raises(FleetConflict) as caught:
            await asyncio.wait_for(gw.run(), 15)
        assert caught.value.claims == {"north": ["north_lights"]}
        assert list(annex_sim.device("annex_lights").reads) == []
