"""The history's health as alarms, with real parts: the recorder publishes its status (retained; online,
and whether it can write to InfluxDB), the evaluator raises influxdb_unreachable while InfluxDB is down
and clears it once the recorder writes again, and raises recorder_offline when the recorder stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway.alarms.config import build_alarms_config
from iot_gateway.alarms.service import running_alarms
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from tests.iot_gateway.alarms.test_service import fast_rules
from tests.support.gateway import probe, site_dict
from tests.support.influx import recorder_config

T = Topics()
OFFLINE, INFLUX = "recorder_offline.recorder", "influxdb_unreachable.recorder"


def raised(a: Any) -> bool:
    return bool(a["active"])


async def test_influxdb_down_then_the_recorder_stopped_raise_their_alarms(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    loaded = load_site(DEMO_SITE)
    site = site_from_dict(site_dict(loaded, mosquitto), loaded.profiles)
    env = {"BCC_MQTT_PASSWORD": mosquitto.password("alarms")}
    config = build_alarms_config(site, env, fast_rules(tmp_path), tmp_path / "a.db", instance="hist")
    rec_cfg = recorder_config(loaded, mosquitto, influxd, tmp_path, stats_interval_s=0.2)
    status_topic = T.recorder_status(rec_cfg.client_id)
    async with probe(mosquitto, "readonly") as watch, running_alarms(config):
        async with running_recorder(rec_cfg):
            up = await watch.wait_for(status_topic, lambda s: s["influxdb"] == "reachable", 10)
            assert up["state"] == "online"
            mark = watch.mark()
            await influxd.stop()  # the recorder's statistics points now fail to be written
            down = await watch.wait_for(
                status_topic, lambda s: s["influxdb"] == "unreachable", 15, since=mark
            )
            assert down["state"] == "online" and down["spool_depth"] >= 0
            alarm = await watch.wait_for(T.alarm_state(INFLUX), raised, 8, since=mark)
            assert alarm["value"] == rec_cfg.client_id and alarm["severity"] == "high"
            mark = watch.mark()
            await influxd.restart()
            await watch.wait_for(status_topic, lambda s: s["influxdb"] == "reachable", 15, since=mark)
            cleared = await watch.wait_for(T.alarm_state(INFLUX), lambda a: not a["active"], 8, since=mark)
            assert cleared["state"] == "cleared_unacked"
            mark = watch.mark()
        # stopped cleanly: it says offline itself (a crash: the broker sends its last will, the same)
        gone = await watch.wait_for(status_topic, lambda s: s["state"] == "offline", 5, since=mark)
        assert gone["influxdb"] == "unknown"
        alarm = await watch.wait_for(T.alarm_state(OFFLINE), raised, 8, since=mark)
        assert alarm["value"] == rec_cfg.client_id
