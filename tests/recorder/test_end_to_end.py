"""Simulators -> gateway -> Mosquitto -> recorder -> InfluxDB: what is published is what is stored."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

from bcc.broker import MosquittoProcess
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.lineproto import iso_to_ns
from iot_gateway.recorder.service import running_recorder
from simulators.site import SiteSimulator
from tests.recorder.helpers import rows
from tests.support.gateway import eventually, gateway_config, probe, running_gateway
from tests.support.influx import influxql, recorder_config


async def test_every_published_state_is_stored_once(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    loaded = room_sim.site_for_clients()
    rec_cfg = recorder_config(loaded, mosquitto, influxd, tmp_path)
    gw_cfg = gateway_config(loaded, mosquitto)
    async with running_recorder(rec_cfg) as rec, probe(mosquitto) as p:
        async with running_gateway(gw_cfg):
            await p.wait_for("bcc/wall/availability", lambda v: v == "online", timeout=10)
            # Change things so more than the first state is published.
            for i in range(3):
                await p.publish("bcc/lights_a/set", {"relay_1": "ON" if i % 2 == 0 else "OFF"})
                await p.wait_for("bcc/lights_a/response", since=p.mark() - 1, timeout=5)
            await asyncio.sleep(2.5)  # the observation window: several 1 s polls of every device
        await rec.drain(10)
        published: dict[str, set[int]] = defaultdict(set)
        for msg in p.messages:
            parts = str(msg.topic).split("/")
            if len(parts) == 2 and parts[1] in {d.id for d in loaded.site.devices}:
                import orjson

                published[parts[1]].add(iso_to_ns(orjson.loads(bytes(msg.payload))["ts"]))
        assert published, "no state published"
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
