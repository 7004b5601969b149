"""The command path end to end: real Mosquitto (project config), real simulators, in-process gateway."""

from __future__ import annotations

import contextlib
import struct
import time
from typing import Any

import aiomqtt

from devices.loader import site_from_dict
from devices.models import DeviceProfile
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, tuned_site, with_ts
from tests.support.raw_modbus import RawModbusServer, frame
from tests.support.wait import eventually

COIL_WRITES = (5, 15)


def writes(sim: SiteSimulator, device: str) -> list[Any]:
    return list(sim.device(device).writes)


async def test_switch_relay_changes_coil_and_publishes_state(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a", lambda s: s.get("relay_3") == "OFF")
        assert await p.wait_for("bcc/lights_a/availability") == "online"
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_3": "ON", "transaction": "t-1"}))
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "ok", resp
        assert resp["transaction"] == "t-1"
        assert resp["state"] == {"relay_3": "ON"}
        assert room_sim.device("lights_a").get_point("relay_3") is True
        state = await p.wait_for("bcc/lights_a", lambda s: s.get("relay_3") == "ON", since=mark)
        assert state["relay_2"] == "OFF"
        assert state["ts"].endswith("Z")
        assert [w.address for w in writes(room_sim, "lights_a")] == [2]


async def test_layout_preset_change(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/wall", lambda s: s.get("layout") == "wide")
        mark = p.mark()
        await p.publish("bcc/wall/set", with_ts({"layout": "split_4", "transaction": "lay"}))
        resp = await p.wait_for("bcc/wall/response", since=mark)
        assert resp["status"] == "ok", resp
        assert room_sim.device("wall").get_registers("holding_register", 0, 1) == [3]
        await p.wait_for("bcc/wall", lambda s: s.get("layout") == "split_4", since=mark)


async def test_meter_float32_decoded(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    hi_lo = struct.pack(">f", 228.25)
    regs = [int.from_bytes(hi_lo[:2], "big"), int.from_bytes(hi_lo[2:], "big")]
    await room_sim.device("meter_main").set_registers("input_register", 0, regs)
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto) as p, running_gateway(cfg):
        state = await p.wait_for("bcc/meter_main", lambda s: "voltage_l1" in s)
        assert state["voltage_l1"] == 228.2  # precision 1 (round half to even of 228.25)


async def test_stuck_relay_gives_failed_readback(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    room_sim.device("lights_b").set_fault("stuck")
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_b", lambda s: s.get("relay_1") == "OFF")
        mark = p.mark()
        await p.publish("bcc/lights_b/set", with_ts({"relay_1": "ON", "transaction": "stuck-1"}))
        resp = await p.wait_for("bcc/lights_b/response", since=mark)
        assert resp["status"] == "failed_readback", resp
        assert resp["state"] == {"relay_1": "OFF"}
        assert len(writes(room_sim, "lights_b")) == 1  # the write was tried once
        # The published state is the device's, never the requested value.
        assert all(s.get("relay_1") == "OFF" for s in p.all("bcc/lights_b", since=mark))


async def test_rejections_cause_no_write(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    bad: list[tuple[bytes | dict[str, Any], str]] = [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"relay_9": "ON"}, "unknown point"),
        ({"relay_1": "TOGGLE"}, 'expected "ON" or "OFF"'),
        ({"relay_1": 1}, 'expected "ON" or "OFF"'),
        ({"device_address": 7}, "read-only"),
        ({"relay_1": "ON", "relay_2": "MAYBE"}, "relay_2"),  # partly valid: nothing is written
        ({}, "no point"),
        ({"relay_1": "ON", "ts": "yesterday"}, "ts must be ISO-8601 with timezone or epoch seconds"),
        ({"relay_1": "ON", "ts": "2026-12-05T10:00:00"}, "ts must be ISO-8601 with timezone"),
        ({"relay_1": "ON", "ts": True}, "ts must be ISO-8601 with timezone"),
        (b"x" * 200_000, "exceeds the limit"),  # above the gateway's 16 KB, below the broker's 256 KB
    ]
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        for i, (payload, expected) in enumerate(bad):
            mark = p.mark()
            if isinstance(payload, dict):  # sent now, so that the problem named is the one refused
                payload = {"ts": time.time(), **payload}
            await p.publish("bcc/lights_a/set", payload)
            resp = await p.wait_for("bcc/lights_a/response", since=mark)
            assert resp["status"] == "rejected", (i, resp)
            assert expected in resp["error"], (i, resp)
        # Still alive and working after all that garbage.
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_8": "ON"}))
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "ok"
        assert [w.address for w in writes(room_sim, "lights_a")] == [7]
        assert gw.metrics.commands.labels("rejected")._value.get() == len(bad)


async def test_stale_and_future_commands(room_sim: SiteSimulator, mosquitto: MosquittoProcess) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, command_ttl_s=5)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "transaction": "old", "ts": time.time() - 60})
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "stale" and resp["transaction"] == "old"
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "ts": "2020-01-01T00:00:00Z"})
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "stale"
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "ts": time.time() + 60})
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "rejected" and "in the future" in resp["error"], resp
        assert writes(room_sim, "lights_a") == []
        mark = p.mark()
        fresh = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "ts": fresh})
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "ok"
        assert len(writes(room_sim, "lights_a")) == 1


async def test_command_without_ts_is_rejected_and_writes_nothing(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """It has no age: queued somewhere (a bridge during a WAN cut) it would run whenever delivered."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)  # require_command_ts: the default
    assert cfg.loaded.site.gateway.require_command_ts is True
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "transaction": "no-ts"})
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "rejected" and resp["transaction"] == "no-ts", resp
        assert resp["error"].startswith("ts missing: a command must say when it was sent"), resp
        assert gw.metrics.commands.labels("rejected")._value.get() == 1
        # Answered only after the gateway decided: the relay board saw no write at all.
        assert writes(room_sim, "lights_a") == []
        assert room_sim.device("lights_a").get_point("relay_1") is False
        # The same command with its send time runs.
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_1": "ON", "transaction": "with-ts"}))
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "ok"
        assert [w.address for w in writes(room_sim, "lights_a")] == [0]


async def test_command_without_ts_runs_when_the_site_does_not_require_it(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """``gateway.require_command_ts: false``: the old behaviour, for a gateway on a local broker only."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, require_command_ts=False)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_1": "ON", "transaction": "no-ts"})
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "ok" and resp["transaction"] == "no-ts", resp
        assert [w.address for w in writes(room_sim, "lights_a")] == [0]
        # A ts, when given, is still judged: an old command is stale and writes nothing.
        mark = p.mark()
        await p.publish("bcc/lights_a/set", {"relay_2": "ON", "ts": time.time() - 60})
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "stale"
        assert [w.address for w in writes(room_sim, "lights_a")] == [0]


async def test_repeated_transaction_executes_once(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        mark = p.mark()
        for _ in range(5):
            await p.publish("bcc/lights_a/set", with_ts({"relay_5": "ON", "transaction": "same"}))
        await eventually(lambda: len(p.all("bcc/lights_a/response", since=mark)) == 5)
        responses = p.all("bcc/lights_a/response", since=mark)
        assert all(r == responses[0] for r in responses), responses
        assert responses[0]["status"] == "ok"
        assert len(writes(room_sim, "lights_a")) == 1


async def test_retained_command_before_start_is_ignored(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto, subscribe=None) as planter:
        await planter.publish("bcc/lights_a/set", with_ts({"relay_1": "ON"}), retain=True)
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_a", lambda s: s.get("relay_1") == "OFF")
        await eventually(lambda: gw.metrics.retained_commands_ignored._value.get() == 1)
        # A live command after it is executed normally: the retained one never was.
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_2": "ON"}))
        assert (await p.wait_for("bcc/lights_a/response", since=mark))["status"] == "ok"
        assert [w.address for w in writes(room_sim, "lights_a")] == [1]
        assert p.all("bcc/lights_a/response") == p.all("bcc/lights_a/response", since=mark)


async def test_one_megabyte_payload_is_stopped_at_the_broker(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """mosquitto.conf caps packets at 256 KB: a 1 MB command never reaches the gateway."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with probe(mosquitto) as p, running_gateway(cfg):
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        with contextlib.suppress(aiomqtt.MqttError):  # the broker drops the sender's connection
            async with probe(mosquitto, subscribe=None) as sender:
                await sender.publish("bcc/lights_a/set", b"{" + b" " * 1_000_000 + b"}")
        mark = p.mark()
        await p.publish("bcc/lights_a/set", with_ts({"relay_4": "ON", "transaction": "after-1mb"}))
        resp = await p.wait_for("bcc/lights_a/response", since=mark)
        assert resp["status"] == "ok" and resp["transaction"] == "after-1mb"
        assert p.all("bcc/lights_a/response") == [resp]
        assert [w.address for w in writes(room_sim, "lights_a")] == [3]


SETPOINT_PROFILE = {
    "model": "setpoint",
    "manufacturer": "Test",
    "label": {"id": "Titik setel", "en": "Setpoint"},
    "source": "a writable float32 (none of the shipped profiles has one)",
    "poll_groups": {"default": {"interval_s": 1}},
    "points": [
        {
            "key": "setpoint",
            "label": {"id": "Titik setel", "en": "Setpoint"},
            "table": "holding_register",
            "address": 0,
            "type": "float32",
            "unit": "C",
            "writable": True,
        }
    ],
}


async def test_a_read_back_its_point_cannot_have_is_answered_failed_readback(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """The device takes the write and then reports NaN: the command is answered failed_readback, naming
    the point and that the device reports no valid value; the state published before the response
    carries the point as null (what the device reported)."""
    written: list[bytes] = []

    def answer(tid: int, unit: int, pdu: bytes) -> bytes:
        if pdu[0] == 16:  # write multiple registers: the echo of address and count
            written.append(pdu)
            return frame(tid, unit, pdu[:5])
        words = (0x7FC0, 0) if written else (0x41A0, 0)  # NaN after the write, 20.0 before
        return frame(tid, unit, bytes((3, 4)) + struct.pack(">HH", *words))

    async with RawModbusServer(answer) as server:
        loaded = room_sim.site_for_clients()
        raw = loaded.site.model_dump(mode="json", exclude_none=True)
        for device in raw["devices"]:
            if device["id"] == "wall":
                device["profile"] = "setpoint"
        profiles = {**loaded.profiles, "setpoint": DeviceProfile.model_validate(SETPOINT_PROFILE)}
        site = tuned_site(
            site_from_dict(raw, profiles),
            keep=["wall"],
            buses={"wall_lan": {"host": server.host, "port": server.port}},
        )
        async with probe(mosquitto) as p, running_gateway(gateway_config(site, mosquitto)):
            await p.wait_for("bcc/wall", lambda s: s.get("setpoint") == 20.0)
            mark = p.mark()
            await p.publish("bcc/wall/set", with_ts({"setpoint": 21.5, "transaction": "nan"}))
            resp = await p.wait_for("bcc/wall/response", since=mark)
            assert resp["status"] == "failed_readback", resp
            assert resp["error"] == "setpoint: requested 21.5, device reports no valid value (NaN/Inf)", resp
            assert resp["state"] == {"setpoint": None}, resp
            assert len(written) == 1
            # Published before the response (the gateway hands the state over first).
            assert [s["setpoint"] for s in p.all("bcc/wall", since=mark)] == [None]
