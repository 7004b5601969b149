"""Paths beside the main one: an MQTT 3.1.1 persistent session, two recorders in one shared
subscription, and the rollup continuous query producing points."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from tests.support.influx import influxql, recorder_config
from tests.support.recorder import distinct_times, meter_state, per_device, publish_as_gateway, rows
from tests.support.wait import eventually

LOADED = per_device(load_site(DEMO_SITE))


def meter(i: int) -> tuple[str, bytes]:
    return "bcc/meter_main", meter_state(i)


async def test_mqtt_311_persistent_session_keeps_what_arrived_while_away(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path, mqtt={"protocol": "3.1.1"})
    async with running_recorder(cfg) as rec:
        assert rec.intake.session_present is False  # first start: subscribes
        await publish_as_gateway(mosquitto, meter, 100, 1000)
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= 100, timeout=10, step=0.1)
    # The recorder is away: the broker queues for its clean_session=False session.
    await publish_as_gateway(mosquitto, lambda i: meter(100 + i), 300, 1000)
    async with running_recorder(cfg) as rec:
        assert rec.intake.session_present is True  # the broker kept the session and its subscriptions
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= 400, timeout=10, step=0.1)
        await rec.drain(5)
        assert rec.intake.messages == 300
    assert rows(influxd.url, "sdm630", "power_total") == 400
    assert distinct_times(influxd.url, "sdm630", "power_total") == 400


@pytest.mark.broker_accounts(recorder=2)  # one account per recorder process (docs/influxdb.md)
async def test_two_recorders_in_a_shared_subscription_write_every_point_once(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    total = 2000
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    cfg_a = recorder_config(
        LOADED, mosquitto, influxd, a_dir, shared_group="rec", client_id="rec-a", mqtt_username="recorder_1"
    )
    cfg_b = recorder_config(
        LOADED, mosquitto, influxd, b_dir, shared_group="rec", client_id="rec-b", mqtt_username="recorder_2"
    )
    async with running_recorder(cfg_a) as a, running_recorder(cfg_b) as b:
        assert a.intake.filters[0].startswith("$share/rec/")
        await publish_as_gateway(mosquitto, meter, total, 2000)
        await eventually(lambda: a.intake.messages + b.intake.messages >= total, timeout=20, step=0.1)
        await a.drain(10)
        await b.drain(10)
        # Each message went to exactly one member of the group, and both got a share of the load.
        assert a.intake.messages + b.intake.messages == total
        assert a.intake.messages > total // 10 and b.intake.messages > total // 10
        assert a.writer.written + b.writer.written == total * 12
    assert rows(influxd.url, "sdm630", "power_total") == total
    assert distinct_times(influxd.url, "sdm630", "power_total") == total


async def test_rollup_continuous_query_produces_means(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # InfluxDB 1.6.7 runs a CQ only at the end of each GROUP BY interval (5 min) on its own schedule,
    # so the test runs the CQ's own SELECT, read back from SHOW CONTINUOUS QUERIES, over the past
    # intervals (what the CQ does for the latest one), and checks the means it writes.
    cfg = recorder_config(LOADED, mosquitto, influxd, tmp_path)
    async with running_recorder(cfg) as rec:
        await publish_as_gateway(mosquitto, meter, 200, 2000)  # source times: 1 h ago, 200 ms apart
        await eventually(lambda: rows(influxd.url, "sdm630", "power_total") >= 200, timeout=10, step=0.1)
        await rec.drain(5)
    cqs = influxql(influxd.url, "SHOW CONTINUOUS QUERIES")
    ((name, text),) = [tuple(v) for s in cqs if s["name"] == "bcc" for v in s["values"]]
    assert name == "cq_rollup"
    body = re.fullmatch(r"CREATE CONTINUOUS QUERY \S+ ON \S+ BEGIN (.*) END", text)
    assert body is not None, text
    select = body.group(1)
    assert "GROUP BY time(5m)" in select and "INTO bcc.rollup.:MEASUREMENT" in select.replace('"', "")
    now = int(time.time())
    where = f" WHERE time >= {(now - 3 * 3600) * 10**9} AND time < {now * 10**9} GROUP BY "
    influxql(influxd.url, select.replace(" GROUP BY ", where, 1))
    rolled = influxql(influxd.url, 'SELECT count("mean_power_total") FROM "rollup"."sdm630"')
    assert rolled and rolled[0]["values"][0][1] >= 1  # 40 s of data: one or two 5-minute buckets
    got = influxql(
        influxd.url,
        'SELECT "mean_power_total", "mean_frequency" FROM "rollup"."sdm630" WHERE device = \'meter_main\'',
    )
    raw = influxql(
        influxd.url,
        'SELECT mean("power_total"), mean("frequency") FROM "raw"."sdm630" '
        f"WHERE time >= {(now - 3 * 3600) * 10**9} GROUP BY time(5m), device fill(none)",
    )
    assert [r[1:] for r in got[0]["values"]] == [r[1:] for r in raw[0]["values"]]
    # Tags are kept (GROUP BY *): the rollup is per device and site like the raw series.
    tags = influxql(influxd.url, 'SHOW TAG KEYS FROM "rollup"."sdm630"')
    assert {v[0] for v in tags[0]["values"]} == {"device", "site"}
