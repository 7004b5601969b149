"""Simulators -> gateway -> Mosquitto -> recorder -> InfluxDB: what is published is what is stored."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.lineproto import iso_to_ns
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, tuned_site, with_ts
from tests.support.influx import influxql, recorder_config
from tests.support.recorder import rows
from tests.support.wait import eventually


@pytest.mark.parametrize("batch_ms", [None, 50], ids=["per-device", "bulk"])
async def test_every_published_state_is_stored_once(
    room_sim: SiteSimulator,
    mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    tmp_path: Path,
    batch_ms: int | None,
) -> None:
    """Per device: the recorder reads bcc/<device>. Bulk (gateway.telemetry_batch_ms): the gateway also
    sends every state in bcc/bridge/bcc_room/telemetry, the recorder reads only that, and stores the same."""
    loaded = room_sim.site_for_clients()
    gateway = loaded.site.gateway.model_copy(update={"telemetry_batch_ms": batch_ms})
    loaded = dataclasses.replace(loaded, site=loaded.site.model_copy(update={"gateway": gateway}))
    rec_cfg = recorder_config(loaded, mosquitto, influxd, tmp_path)
    gw_cfg = gateway_config(loaded, mosquitto)
    async with running_recorder(rec_cfg) as rec, probe(mosquitto) as p:
        async with running_gateway(gw_cfg):
            await p.wait_for("bcc/wall/availability", lambda v: v == "online", timeout=10)
            # Change things so more than the first state is published.
            for i in range(3):
                await p.publish("bcc/lights_a/set", with_ts({"relay_1": "ON" if i % 2 == 0 else "OFF"}))
                await p.wait_for("bcc/lights_a/response", since=p.mark() - 1, timeout=5)
            await asyncio.sleep(2.5)  # the observation window: several 1 s polls of every device
        await rec.drain(10)
        published: dict[str, set[int]] = defaultdict(set)
        on_device_topics: list[tuple[str, bytes]] = []
        in_bulk: list[tuple[str, bytes]] = []
        for msg in p.messages:
            parts = str(msg.topic).split("/")
            if len(parts) == 2 and parts[1] in {d.id for d in loaded.site.devices}:
                published[parts[1]].add(iso_to_ns(orjson.loads(bytes(msg.payload))["ts"]))
                on_device_topics.append((parts[1], bytes(msg.payload)))
            elif str(msg.topic) == "bcc/bridge/bcc_room/telemetry":
                for device, states in orjson.loads(bytes(msg.payload)).items():
                    in_bulk.extend((device, orjson.dumps(state)) for state in states)
        assert published, "no state published"
        if batch_ms is None:
            assert not in_bulk
        else:  # the same states, byte for byte
            assert sorted(in_bulk) == sorted(on_device_topics) and len(in_bulk) > len(loaded.site.devices)
        for dev in loaded.site.devices:
            profile = loaded.profile_of(dev)
            key = profile.points[0].key
            stored = rows(influxd.url, profile.model, key, f"WHERE device = '{dev.id}'")
            assert stored == len(published[dev.id]), (dev.id, stored, len(published[dev.id]))
        # Values arrive typed: relays as 0/1 integers, enums as strings, numbers as floats.
        last = influxql(influxd.url, 'SELECT last("relay_1") FROM "raw"."relay8" WHERE device = \'lights_a\'')
        assert last[0]["values"][0][1] in (0, 1)
        layout = influxql(influxd.url, 'SELECT last("layout") FROM "raw"."videowall7"')
        assert isinstance(layout[0]["values"][0][1], str)
        online = rows(influxd.url, "availability", "online")
        assert online >= len(loaded.site.devices) + 1  # every device and the bridge
        await eventually(lambda: rec.stats()["spool_depth"] == 0, timeout=5)
        assert rec.stats()["dead_lettered"] == 0


@pytest.mark.slow
async def test_bulk_telemetry_keeps_the_history_of_a_broker_outage(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    """Per-device states polled while the broker is down are lost (only the latest retained state is
    re-sent); with bulk telemetry the gateway holds them and sends them after the reconnect."""
    loaded = room_sim.site_for_clients()
    gateway = loaded.site.gateway.model_copy(update={"telemetry_batch_ms": 50})
    loaded = dataclasses.replace(loaded, site=loaded.site.model_copy(update={"gateway": gateway}))
    sensor = room_sim.device("env_front")
    fast = {"reconnect_max_s": 1.0}  # both clients retry within a second once the broker is back

    def stored() -> set[float]:
        found = influxql(
            influxd.url, 'SELECT "illuminance" FROM "raw"."envsensor" WHERE device = \'env_front\''
        )
        return {row[1] for row in found[0]["values"]} if found else set()

    async with (
        running_recorder(recorder_config(loaded, mosquitto, influxd, tmp_path, mqtt=fast)),
        running_gateway(gateway_config(loaded, mosquitto, mqtt=fast)) as gw,
    ):
        await eventually(lambda: bool(stored()), timeout=15, step=0.2)  # the pipeline is flowing
        await mosquitto.stop()
        for lux in (111, 222, 333, 444):  # four distinct values, each read by a poll
            sensor.set_point("illuminance", lux)

            def polled(lux: int = lux) -> bool:
                return gw.devices["env_front"].values.get("illuminance") == lux

            await eventually(polled, what=f"the gateway read illuminance {lux}")
        assert gw.telemetry is not None and gw.telemetry.pending >= 4
        await mosquitto.start()
        await eventually(lambda: {111.0, 222.0, 333.0, 444.0} <= stored(), timeout=30, step=0.2)
        # The held states are gone from the buffer. Polling goes on, so a window of new states may be
        # waiting for its acknowledgement at any instant (seen: 2 pending right after): wait for an
        # instant between windows rather than asserting on one.
        telemetry = gw.telemetry
        await eventually(lambda: telemetry.pending == 0, timeout=10, step=0.005, what="an empty buffer")


async def test_a_null_point_is_not_stored_and_the_others_are(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    """The meter reports NaN for voltage_l1: its states carry null there; the recorder stores their
    other fields and neither a value nor a dead letter for voltage_l1."""
    loaded = tuned_site(
        room_sim.site_for_clients(), keep=["meter_main"], poll_s={"meter_main": {"default": 0.2}}
    )
    meter = room_sim.device("meter_main")
    meter.set_registers("input_register", 0, [0x7FC0, 0])  # voltage_l1: NaN
    async with (
        running_recorder(recorder_config(loaded, mosquitto, influxd, tmp_path)) as rec,
        probe(mosquitto) as p,
        running_gateway(gateway_config(loaded, mosquitto)),
    ):
        await p.wait_for("bcc/meter_main", lambda s: s["voltage_l1"] is None, timeout=10)
        meter.set_point("frequency", 49.5)  # two more states, each with the null
        await p.wait_for("bcc/meter_main", lambda s: s["frequency"] == 49.5)
        meter.set_point("frequency", 50.5)
        await p.wait_for("bcc/meter_main", lambda s: s["frequency"] == 50.5)
        states = p.all("bcc/meter_main")
        assert len(states) >= 3 and all(s["voltage_l1"] is None for s in states)

        def stored() -> int:
            return rows(influxd.url, "sdm630", "frequency", "WHERE device = 'meter_main'")

        await eventually(lambda: stored() == len(states), timeout=10, what="every state's line")
        assert rows(influxd.url, "sdm630", "voltage_l1") == 0
        assert rows(influxd.url, "sdm630", "voltage_l2", "WHERE device = 'meter_main'") == len(states)
        assert rec.stats()["dead_lettered"] == 0
