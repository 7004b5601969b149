"""After a broker restart that lost every retained message, the gateway puts its state back.

The broker runs the production config with ``persistence false`` (a copy of the template, as
test_home_assistant.py adds log types), so a restart empties its retained store. Two things prove
that here rather than by assumption: a retained message the test itself published before the restart
(``homeassistant/status``, which the gateway only reads) is gone afterwards, and every device's state,
availability and discovery config, the inventory and the bridge state reach a subscriber that
connects after the restart as retained messages again. (The test was checked against a gateway whose
``DeviceRunner.republish`` did nothing: it fails, naming every state and availability topic.)

"What a subscriber holds" is read behind a fence: the probe subscribes, then publishes a message on a
topic it also subscribed to; retained messages are delivered when the subscription is made, so once
the fence is back every retained message for the filter has arrived.
"""

from __future__ import annotations

import time
from pathlib import Path

from bcc_contract.topics import Topics
from iot_gateway import discovery
from mosquitto import ROLES, MosquittoProcess, generate_demo_secrets
from mosquitto.config import PRODUCTION_CONF
from simulators.site import SiteSimulator
from tests.support.gateway import decode, gateway_config, probe, running_gateway
from tests.support.wait import eventually

TOPICS = Topics()
FENCE = TOPICS.set("fence")  # no such device: the gateway only answers "rejected"


async def retained(broker: MosquittoProcess) -> dict[str, object]:
    """Every retained message under ``bcc/#``, the discovery configs and ``homeassistant/status``,
    read by a new subscriber."""
    async with probe(broker, role="homeassistant", subscribe=None) as p:
        await p.subscribe(TOPICS.everything)
        await p.subscribe(TOPICS.discovery("+"))
        await p.subscribe(TOPICS.ha_status)
        token = f"fence-{time.monotonic_ns()}"
        await p.publish(FENCE, {"transaction": token})
        await p.wait_for(FENCE, lambda v: isinstance(v, dict) and v.get("transaction") == token)
        return {str(m.topic): decode(m.payload) for m in p.messages if m.retain}


async def test_states_come_back_after_a_broker_restart_without_persistence(
    room_sim: SiteSimulator, tmp_path: Path
) -> None:
    conf = PRODUCTION_CONF.read_text(encoding="utf-8")
    assert "\npersistence true\n" in conf
    template = tmp_path / "mosquitto.conf"
    template.write_text(conf.replace("\npersistence true\n", "\npersistence false\n"), encoding="utf-8")
    broker = MosquittoProcess(
        tmp_path / "broker", credentials=generate_demo_secrets(ROLES), template=template
    )
    site = room_sim.site_for_clients()
    devices = [d.id for d in site.site.devices]
    expected = [TOPICS.state(d) for d in devices] + [TOPICS.availability(d) for d in devices]
    expected += [TOPICS.discovery(discovery.node_id(site.site.site, d)) for d in devices]
    expected += [TOPICS.bridge_devices("bcc_room"), TOPICS.bridge_state("bcc_room")]

    async def holding_all() -> dict[str, object] | None:
        found = await retained(broker)
        return found if all(t in found for t in expected) else None

    async def relay_5_on() -> bool:
        state = (await retained(broker)).get(TOPICS.state("lights_a"))
        return isinstance(state, dict) and state.get("relay_5") == "ON"

    async with broker, running_gateway(gateway_config(site, broker)) as gw:
        async with probe(broker, role="homeassistant", subscribe=None) as ha:
            await ha.publish(TOPICS.ha_status, "offline", retain=True)  # ours: nobody republishes it
        before = await eventually(holding_all, step=0.2, what="every device's retained state")
        assert before[TOPICS.ha_status] == "offline"

        await broker.restart()
        # The room changes while the broker is away: what comes back is the current state.
        room_sim.device("lights_a").set_point("relay_5", True)
        await eventually(lambda: gw.metrics.mqtt_reconnects._value.get() >= 2 and gw.link.connected.is_set())

        # Devices that did not change publish again only at the heartbeat (60 s): what a new subscriber
        # holds now was put back by the gateway's republish on reconnect.
        after = await retained(broker)
        assert TOPICS.ha_status not in after, "the broker kept retained messages across the restart"
        missing = [t for t in expected if t not in after]
        assert not missing, f"not republished after the broker lost them: {missing}"
        assert all(after[TOPICS.availability(d)] == "online" for d in devices)
        assert after[TOPICS.bridge_state("bcc_room")] == "online"
        await eventually(relay_5_on, step=0.2, what="lights_a's retained state shows relay_5 ON")
    assert room_sim.device("lights_a").writes == []
