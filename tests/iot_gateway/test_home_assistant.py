"""A real Home Assistant core against our broker (config and ACL), gateway and simulators.

Home Assistant 2025.4 (the separate venv of scripts/ha-venv.sh) logs in as the ``homeassistant`` role,
discovers every device from the gateway's retained discovery payloads, switches a relay through its
REST API, and subscribes and publishes at QoS 1. Both QoS figures are observed, not inferred: the
broker logs each subscription with its QoS (``log_type subscribe``), and a subscriber holding a QoS 2
subscription on the command topics receives each command at the QoS Home Assistant published it
with (a broker delivers at the lower of the two). One Home Assistant start (its API answers in about
4 s) serves the whole test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from bcc_contract.topics import Topics
from iot_gateway import discovery
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from mosquitto.config import PRODUCTION_CONF
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway
from tests.support.homeassistant import running_home_assistant, write_config
from tests.support.simulators import read_coil
from tests.support.wait import eventually

# "<time>: <client id> <qos> <topic filter>", one line per filter of a SUBSCRIBE.
SUBSCRIBE_LINE = re.compile(r": (\S+) ([012]) (\S+)$")


def expected_entities(sim: SiteSimulator) -> dict[str, str]:
    """entity_id -> device id for every discovery component (Home Assistant names them platform.object_id)."""
    loaded = sim.site_for_clients()
    topics = Topics()
    out: dict[str, str] = {}
    for d in loaded.site.devices:
        config = discovery.device_config(
            loaded.site.site, d, loaded.profile_of(d), topics, loaded.site.gateway_id
        )
        for c in config["components"].values():
            out[f"{c['platform']}.{c['object_id']}"] = d.id
    return out


def subscriptions(log: Path, client_id: str) -> dict[str, int]:
    """Topic filter -> QoS of every subscription ``client_id`` made, from the broker's log."""
    found: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = SUBSCRIBE_LINE.search(line)
        if m and m.group(1) == client_id:
            found[m.group(3)] = int(m.group(2))
    return found


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first run builds the Home Assistant venv
async def test_real_home_assistant_discovers_switches_and_uses_qos_1(
    ha_python: str, room_sim: SiteSimulator, tmp_path: Path
) -> None:
    # The production config plus subscription logging (render_config keeps the lines above `listener`).
    template = tmp_path / "mosquitto.conf"
    conf = PRODUCTION_CONF.read_text(encoding="utf-8")
    template.write_text(conf.replace("\nlistener ", "\nlog_type subscribe\nlistener ", 1), encoding="utf-8")
    broker = MosquittoProcess(
        tmp_path / "broker", credentials=generate_demo_secrets(ROLES), template=template
    )
    entities = expected_entities(room_sim)
    switch = "switch.bcc_bcc_room_lights_a_relay_1"
    assert entities[switch] == "lights_a"
    async with (
        broker,
        running_gateway(gateway_config(room_sim.site_for_clients(), broker)),
        probe(broker, role="readonly", subscribe=None) as commands,
        running_home_assistant(ha_python, write_config(tmp_path / "ha", ha_python, broker)) as ha,
    ):
        await commands.client.subscribe("bcc/+/set", qos=2)

        def all_live(states: dict[str, dict[str, Any]]) -> bool:
            return all(states.get(e, {}).get("state", "unavailable") != "unavailable" for e in entities)

        states = await ha.wait_states(all_live)
        assert len(entities) == 63
        assert {s["entity_id"] for s in states.values() if s["entity_id"] in entities} == set(entities)
        assert states[switch]["state"] == "off"
        assert await read_coil(room_sim, "lights_a", "relay_1") is False

        await ha.call_service("switch", "turn_on", {"entity_id": switch})
        sent = await commands.wait_for("bcc/lights_a/set", timeout=10)
        # The command template makes Home Assistant add its send time (epoch seconds): the gateway
        # refuses a command without ts.
        assert sent.keys() == {"relay_1", "ts"} and sent["relay_1"] == "ON", sent
        assert isinstance(sent["ts"], float) and abs(sent["ts"] - time.time()) < 10, sent
        qos = [m.qos for m in commands.messages if str(m.topic) == "bcc/lights_a/set"]
        assert qos == [1], f"Home Assistant published the command at QoS {qos}"

        async def coil_on() -> bool:
            return await read_coil(room_sim, "lights_a", "relay_1")

        await eventually(coil_on, timeout=10)
        await ha.wait_states(lambda s: s[switch]["state"] == "on", timeout=10)

    # The broker names Home Assistant's connection by its username, whatever id it sent (CLIENT_ID).
    subs = subscriptions(broker.log_path, "homeassistant")
    ours = {topic: q for topic, q in subs.items() if topic.startswith("bcc/")}
    for topic in ("bcc/lights_a", "bcc/lights_a/availability", "bcc/bridge/bcc_room/state", "bcc/wall"):
        assert topic in ours, f"no subscription to {topic} in the broker log: {subs}"
    assert set(ours.values()) == {1}, f"Home Assistant subscribed below QoS 1: {ours}"
