"""Retained commands are never executed, also when published live with the retain flag (MQTT 5)."""

from __future__ import annotations

import pytest

from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, with_ts
from tests.support.simulators import read_coil
from tests.support.wait import eventually


@pytest.mark.parametrize("role", ["homeassistant", "operator"])
@pytest.mark.broker_accounts(gateway=2)  # the gateway is gateway_1; the looks below are gateway_2
async def test_live_retained_command_is_answered_rejected_and_not_executed(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, role: str
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)  # protocol 5, the default
    assert cfg.mqtt.protocol == "5"
    async with (
        probe(mosquitto) as p,
        running_gateway(cfg) as gw,
        probe(mosquitto, role=role, subscribe=None) as sender,
    ):
        # The inventory is published after the command subscription: the gateway now listens live.
        await p.wait_for("bcc/bridge/bcc_room/devices")
        await p.wait_for("bcc/lights_a", lambda s: s.get("relay_5") == "OFF")
        ignored = gw.metrics.retained_commands_ignored._value.get()
        mark = p.mark()
        await sender.publish(
            "bcc/lights_a/set", with_ts({"relay_5": "ON", "transaction": "kept"}), retain=True
        )
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "rejected", resp
        assert resp["transaction"] == "kept"
        assert "retained commands are never executed" in resp["error"]
        assert gw.metrics.retained_commands_ignored._value.get() == ignored + 1
        assert await read_coil(room_sim, "lights_a", "relay_5") is False
        assert list(room_sim.device("lights_a").writes) == []

        # A normal command right after it is executed.
        mark = p.mark()
        await sender.publish("bcc/lights_a/set", with_ts({"relay_6": "ON", "transaction": "live"}))
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "ok" and resp["transaction"] == "live", resp
        assert await read_coil(room_sim, "lights_a", "relay_6") is True
        assert await read_coil(room_sim, "lights_a", "relay_5") is False

        # The retained message stays until its sender clears it with an empty retained payload (a
        # publish its role may make); the gateway does not answer the clearing. Only the gateway role
        # may read commands, so a second gateway-role client looks at what is retained.
        async with probe(mosquitto, role="gateway", subscribe="bcc/lights_a/set") as look:
            await look.wait_for("bcc/lights_a/set", lambda c: c["transaction"] == "kept")
        mark = p.mark()
        await sender.publish("bcc/lights_a/set", b"", retain=True)  # PUBACKed: queued to the gateway
        await p.publish("bcc/lights_a/set", with_ts({"relay_7": "ON", "transaction": "after-clear"}))
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["transaction"] == "after-clear" and resp["status"] == "ok", resp
        assert p.all("bcc/lights_a/response", since=mark) == [resp]
        async with probe(mosquitto, role="gateway", subscribe="bcc/lights_a/set") as look:
            # Anything retained would arrive before this later live message.
            await p.publish("bcc/lights_a/set", with_ts({"relay_7": "ON", "transaction": "marker"}))
            await look.wait_for("bcc/lights_a/set", lambda c: c["transaction"] == "marker")
            assert [c["transaction"] for c in look.all("bcc/lights_a/set")] == ["marker"]
        assert gw.metrics.retained_commands_ignored._value.get() == ignored + 1


async def test_retained_command_left_on_the_broker_is_ignored_after_a_restart(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """Delivered at subscribe time it is stale: counted, not executed, and not answered."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto, role="operator", subscribe=None) as sender:
        async with running_gateway(cfg), probe(mosquitto) as p:
            await p.wait_for("bcc/bridge/bcc_room/devices")
            mark = p.mark()
            await sender.publish(
                "bcc/lights_a/set", with_ts({"relay_8": "ON", "transaction": "old"}), retain=True
            )
            assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "rejected"
        async with probe(mosquitto) as p, running_gateway(cfg) as gw:
            await eventually(lambda: gw.metrics.retained_commands_ignored._value.get() == 1)
            await p.wait_for("bcc/bridge/bcc_room/devices")
            mark = p.mark()
            await p.publish("bcc/lights_a/set", with_ts({"relay_1": "ON", "transaction": "new"}))
            assert (await p.wait_for("bcc/lights_a/response", since=mark))["transaction"] == "new"
            assert [r["transaction"] for r in p.all("bcc/lights_a/response")] == ["new"]
        assert await read_coil(room_sim, "lights_a", "relay_8") is False
        assert [w.address for w in room_sim.device("lights_a").writes] == [0]


async def test_over_mqtt_3_1_1_a_live_retained_command_runs_once_then_is_ignored(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """What docs/mqtt.md says of 3.1.1: no Retain-As-Published, so the live one looks normal."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, mqtt={"protocol": "3.1.1"})
    async with probe(mosquitto, role="operator", subscribe=None) as sender:
        async with running_gateway(cfg), probe(mosquitto) as p:
            await p.wait_for("bcc/bridge/bcc_room/devices")
            mark = p.mark()
            await sender.publish(
                "bcc/lights_a/set", with_ts({"relay_2": "ON", "transaction": "r"}), retain=True
            )
            assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "ok"
        async with probe(mosquitto) as p, running_gateway(cfg) as gw:
            await eventually(lambda: gw.metrics.retained_commands_ignored._value.get() == 1)
            await p.wait_for("bcc/bridge/bcc_room/devices")
            assert p.all("bcc/lights_a/response") == []
        assert [w.address for w in room_sim.device("lights_a").writes] == [1]
