"""Failures the anchors' users report most: dead devices stalling a bus, devices answering garbage,
ghost writes after restarts, and gateways that never come back after a broker restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, site_dict, tuned_site, with_ts
from tests.support.paths import ROOT
from tests.support.raw_modbus import RawModbusServer, frame
from tests.support.wait import eventually


async def test_dead_device_goes_offline_and_neighbours_keep_their_rate(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, offline_after_failures=2)
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_b/availability", lambda v: v == "online")
        room_sim.device("lights_b").set_fault("no_answer")
        await p.wait_for("bcc/lights_b/availability", lambda v: v == "offline", timeout=10)
        # Commands to the dead device are answered at once, without touching the bus.
        mark = p.mark()
        await p.publish("bcc/lights_b/set", with_ts({"relay_1": "ON", "transaction": "dead"}))
        resp = await p.wait_for("bcc/lights_b/response", since=mark)
        assert resp["status"] == "device_unavailable"
        # Its neighbour on the same bus keeps polling at 1 s while the breaker keeps lights_b quiet.
        a = gw.devices["lights_a"]
        before = a.polls_ok
        await asyncio.sleep(4.0)  # the measurement window itself, not a readiness wait
        assert a.polls_ok - before >= 3, a.polls_ok - before
        assert gw.metrics.missed_deadlines.labels("lights_a")._value.get() == 0
        room_sim.device("lights_b").set_fault("none")
        await p.wait_for("bcc/lights_b/availability", lambda v: v == "online", since=mark, timeout=35)
        assert room_sim.device("lights_b").writes == []


async def test_a_device_answering_garbage_goes_offline_and_the_gateway_keeps_polling_the_others(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """The wall's bus reaches a server whose every answer carries a byte count beyond its one data
    byte: the wall goes offline after offline_after_failures failed polls, counted as request errors;
    the lights keep polling and publishing. The answer may not end the gateway (it ran every device
    in one TaskGroup)."""
    garbage = RawModbusServer(lambda tid, unit, pdu: frame(tid, unit, bytes((pdu[0], 3, 0))))
    async with garbage:
        site = tuned_site(
            room_sim.site_for_clients(),
            keep=["lights_a", "wall"],
            buses={"wall_lan": {"host": garbage.host, "port": garbage.port}},
        )
        cfg = gateway_config(site, mosquitto, offline_after_failures=2)
        async with probe(mosquitto) as p, running_gateway(cfg) as gw:
            await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
            await p.wait_for("bcc/wall/availability", lambda v: v == "offline", timeout=10)
            assert gw.metrics.request_errors.labels("wall", "BadAnswer")._value.get() >= 2
            assert gw.devices["wall"].breaker_open
            mark = p.mark()
            await room_sim.device("lights_a").set_point("relay_4", True)  # the device changes by itself
            await p.wait_for("bcc/lights_a", lambda s: s.get("relay_4") == "ON", since=mark, timeout=5)
            assert gw.devices["lights_a"].available is True and not gw.devices["lights_a"].failures


NAN = [0x7FC0, 0]  # float32 NaN, high word first (the SDM630's order)


async def test_a_nan_point_is_null_and_the_device_stays_online(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """An energy meter with an unconnected phase reports NaN for voltage_l1: every poll still succeeds,
    the state carries voltage_l1 as null and the other points as usual (a change of one of them is
    published), the meter never goes offline. A null that stays null is no change (polls at 0.1 s,
    no heartbeat within the test); the phase's value coming back is one."""
    meter = room_sim.device("meter_main")
    site = tuned_site(
        room_sim.site_for_clients(), keep=["meter_main"], poll_s={"meter_main": {"default": 0.1}}
    )
    cfg = gateway_config(site, mosquitto, offline_after_failures=2, heartbeat_s=600)
    meter.set_registers("input_register", 0, NAN)  # voltage_l1
    async with probe(mosquitto) as p, running_gateway(cfg) as gw:
        state = await p.wait_for("bcc/meter_main", timeout=10)
        assert state["voltage_l1"] is None, state
        assert isinstance(state["voltage_l2"], float) and isinstance(state["frequency"], float), state
        mark = p.mark()
        runner = gw.devices["meter_main"]
        polls = runner.polls_ok
        await eventually(lambda: runner.polls_ok >= polls + 10, timeout=5, step=0.02, what="10 more polls")
        assert p.all("bcc/meter_main", since=mark) == [], "an unchanged null was published again"
        await meter.set_point("frequency", 49.5)  # the other points keep their updates
        state = await p.wait_for("bcc/meter_main", lambda s: s["frequency"] == 49.5, since=mark)
        assert state["voltage_l1"] is None, state
        meter.set_registers("input_register", 0, [0x4366, 0])  # 230.0 V: the phase is back
        await p.wait_for("bcc/meter_main", lambda s: s["voltage_l1"] == 230.0, since=mark)
        meter.set_registers("input_register", 0, [0x7F80, 0])  # +Inf: null again
        await p.wait_for("bcc/meter_main", lambda s: s["voltage_l1"] is None, since=mark)
        assert runner.available is True and runner.failures == 0
        assert p.all("bcc/meter_main/availability") == ["online"]
        assert gw.metrics.request_errors.labels("meter_main", "CodecError")._value.get() == 0


@pytest.mark.slow
async def test_restarts_never_write(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """Ten restarts (SIGTERM and SIGKILL alternating) with relays in mixed states: zero writes."""
    mixed = {"relay_1": True, "relay_2": False, "relay_3": True, "relay_8": True}
    for key, value in mixed.items():
        await room_sim.device("lights_a").set_point(key, value)
    await room_sim.device("wall").set_point("layout", "split_3")
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_dict(room_sim.site_for_clients(), mosquitto)), encoding="utf-8")
    env = {**os.environ, "BCC_MQTT_PASSWORD": mosquitto.password("gateway"), "BCC_LOG_FORMAT": "json"}
    async with probe(mosquitto) as p:
        for i in range(10):
            mark = p.mark()
            log = (tmp_path / f"gateway-{i}.log").open("wb")
            cmd = [sys.executable, "-m", "bcc", "gateway", "--site", str(site_file)]
            proc = await asyncio.create_subprocess_exec(
                *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
            try:
                await p.wait_for("bcc/bridge/bcc_room/state", lambda v: v == "online", since=mark, timeout=15)
                state = await p.wait_for(
                    "bcc/lights_a", lambda s: s.get("relay_1") == "ON", since=mark, timeout=5
                )
                assert state["relay_2"] == "OFF" and state["relay_8"] == "ON"
                await p.wait_for("bcc/wall", lambda s: s.get("layout") == "split_3", since=mark, timeout=5)
            finally:
                proc.send_signal(signal.SIGTERM if i % 2 == 0 else signal.SIGKILL)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                finally:
                    log.close()
                    print((tmp_path / f"gateway-{i}.log").read_text()[-3000:])  # shown on failure
            await p.wait_for("bcc/bridge/bcc_room/state", lambda v: v == "offline", since=mark, timeout=10)
    for dev in ("lights_a", "lights_b", "env_front", "env_back", "meter_main", "wall"):
        assert room_sim.device(dev).writes == [], dev
    assert room_sim.device("lights_a").get_point("relay_1") is True


@pytest.mark.slow
async def test_broker_restart_reconnects_and_republishes(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with running_gateway(cfg) as gw:
        async with probe(mosquitto) as p:
            await p.wait_for("bcc/lights_a", lambda s: "relay_1" in s)
        await mosquitto.restart()
        async with probe(mosquitto) as p:
            await p.wait_for("bcc/bridge/bcc_room/state", lambda v: v == "online", timeout=10)
            await asyncio.wait_for(gw.link.connected.wait(), 10)
            await room_sim.device("lights_a").set_point("relay_4", True)  # the device changes by itself
            await p.wait_for("bcc/lights_a", lambda s: s.get("relay_4") == "ON", timeout=5)
            mark = p.mark()
            await p.publish("bcc/lights_a/set", with_ts({"relay_6": "ON", "transaction": "after"}))
            resp = await p.wait_for("bcc/lights_a/response", since=mark)
            assert resp["status"] == "ok"
        assert gw.metrics.mqtt_reconnects._value.get() >= 2
        assert [w.address for w in room_sim.device("lights_a").writes] == [5]
