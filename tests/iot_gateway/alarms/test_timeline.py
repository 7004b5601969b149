"""The Grafana alarm timeline end to end: the real evaluator raises, an operator acknowledges and the
alarm clears; the real recorder writes each transition to real InfluxDB (``alarm_event``), and the
Command room dashboard's own alarm queries return that history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site
from grafana.build import dashboards
from iot_gateway.alarms.service import running_alarms
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from simulators import start_site
from tests.grafana.test_queries import substitute
from tests.iot_gateway.alarms.test_service import WALL_OFFLINE, alarms_config, command, event_of
from tests.support.gateway import gateway_config, probe, running_gateway
from tests.support.influx import influxql, recorder_config
from tests.support.wait import eventually

T = Topics()


def _rows(influx: str, q: str) -> list[dict[str, Any]]:
    return [
        dict(zip(s["columns"], v, strict=True))
        for s in influxql(influx, q, absent_ok=True)
        for v in s["values"]
    ]


async def test_alarm_transitions_reach_influxdb_and_the_dashboard(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    sim = await start_site(load_site(DEMO_SITE), port=0, seed=21)
    config = alarms_config(sim, mosquitto, tmp_path)
    loaded = sim.site_for_clients()
    try:
        async with (
            running_recorder(recorder_config(loaded, mosquitto, influxd, tmp_path)) as rec,
            running_gateway(gateway_config(loaded, mosquitto, breaker_max_backoff_s=1.0)),
            probe(mosquitto, "operator", subscribe=T.everything) as p,
            running_alarms(config),
        ):
            mark = p.mark()
            sim.device("wall").set_fault("no_answer")
            raised = await event_of(p, WALL_OFFLINE, "raised", since=mark, timeout=20)
            ok = await command(p, "ack-t", alarm=WALL_OFFLINE, action="ack", by="siti", note="power cut")
            assert ok["status"] == "ok", ok
            sim.device("wall").set_fault("none")
            cleared = await event_of(p, WALL_OFFLINE, "cleared", since=mark, timeout=20)
            q = f'SELECT * FROM "raw"."alarm_event" WHERE "alarm" = \'{WALL_OFFLINE}\''
            await eventually(lambda: len(_rows(influxd.url, q)) == 3, timeout=10)
            await rec.drain(5)
    finally:
        await sim.stop()
    rows = _rows(influxd.url, q)
    assert [(r["event"], r["state"], r["who"]) for r in rows] == [
        ("raised", "active_unacked", raised["who"]),
        ("acked", "active_acked", "siti"),
        ("cleared", "normal", cleared["who"]),
    ]
    assert {r["severity"] for r in rows} == {raised["severity"]} and rows[0]["device"] == "wall"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert rows[0]["value_text"] == "offline"
    # The dashboard's alarm panels, as Grafana would send them, draw this alarm.
    devices = [d.id for d in loaded.site.devices] + ["bridge"]
    panels = {p["title"]: p for p in dashboards(loaded)["command_room.json"]["panels"]}
    timeline = influxql(influxd.url, substitute(panels["Alarms"]["targets"][0]["query"], devices))
    assert WALL_OFFLINE in {s["tags"]["alarm"] for s in timeline}
    states = {v[1] for s in timeline if s["tags"]["alarm"] == WALL_OFFLINE for v in s["values"]}
    assert {"active_acked", "normal"} <= states  # raised and acked may share one 1 s interval
    table = influxql(influxd.url, substitute(panels["Alarm events"]["targets"][0]["query"], devices))
    assert sum(len(s["values"]) for s in table) == 3
