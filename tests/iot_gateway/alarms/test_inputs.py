"""What the service makes of its inputs: availability that is neither ``online`` nor ``offline`` (an empty
retained message, garbage) and a WAN link that is neither ``1`` nor ``0`` change nothing; a state that is
not a JSON object is ignored; bulk telemetry batches are judged in order and bad ones ignored (without a
broker), and with a broker the retained device states are read once at connect, the batches after."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bcc_common.timefmt import iso_ms
from bcc_contract.reports import backlog_payload
from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway.alarms.config import build_alarms_config
from iot_gateway.alarms.service import AlarmService, running_alarms
from mosquitto import MosquittoProcess
from tests.iot_gateway.alarms.test_service import fast_rules
from tests.support.gateway import probe, site_dict
from tests.support.wait import eventually

T = Topics()
GATEWAY = load_site(DEMO_SITE).site.gateway_id  # the demo site's gateway: its bridge topics


async def active_service(tmp_path: Path) -> AlarmService:
    """The service on the demo room's rules (delays shortened), holding the lease, without a broker."""
    env = {"BCC_MQTT_PASSWORD": "alarms-secret-0123"}
    rules = fast_rules(tmp_path)
    config = build_alarms_config(load_site(DEMO_SITE), env, rules, tmp_path / "s.db", instance="t")
    service = AlarmService(config)
    await service._check_lease(time.time())
    assert service.active
    return service


async def test_odd_inputs_change_nothing(tmp_path: Path) -> None:
    service = await active_service(tmp_path)
    try:
        for payload in (b"", b"maybe", b"OFFLINE"):
            await service.handle(T.availability("wall"), payload, retained=True)
            await service.handle(T.bridge_state(GATEWAY), payload, retained=True)
            await service.handle(T.bridge_link(GATEWAY), payload, retained=True)
        # a link that said 0 and was then removed (empty retained: the building no longer bridged)
        await service.handle(T.bridge_link(GATEWAY), b"0", retained=True)
        await service.handle(T.bridge_link(GATEWAY), b"", retained=True)
        for payload in (b"[1, 2]", b"not json", b'"text"'):
            await service.handle(T.state("env_front"), payload, retained=False)
        later = time.time() + 3600
        assert service.evaluator.tick(later) == []
        assert {a.state.value for a in service.evaluator.alarms.values()} == {"normal"}
        await service.handle(T.availability("wall"), b"offline", retained=True)
        assert [e.alarm for e in service.evaluator.tick(later)] == ["device_offline.wall"]
    finally:
        service.store.close()


def _iso(offset_s: float = 0.0) -> str:
    return iso_ms(time.time() + offset_s)


async def test_bulk_batches_judged_in_order_bad_ones_ignored(tmp_path: Path) -> None:
    """With bulk telemetry (the shipped sites) states come in the gateway's batches: each state in order,
    one that is older than a state already judged is skipped, a batch that is not ``{device: [state]}``
    or names an unknown device changes nothing."""
    service = await active_service(tmp_path)
    try:
        assert service.bulk  # the shipped site turns gateway.telemetry_batch_ms on
        for payload in (b"not json", b"[1]", b'{"env_front": {"temperature": 35}}', b'{"nope": [{"x": 1}]}'):
            await service.handle(T.bridge_telemetry(GATEWAY), payload, retained=False)
        assert service.evaluator.tick(time.time() + 3600) == []
        hot = {"temperature": 31.0, "ts": _iso(-1)}
        cool = {"temperature": 22.0, "ts": _iso()}
        batch = {"env_front": [hot, cool], "env_back": [hot]}
        await service.handle(T.bridge_telemetry(GATEWAY), orjson.dumps(batch), retained=False)
        await service.handle(T.state("env_front"), orjson.dumps(hot), retained=True)  # older: skipped
        later = time.time() + 3600
        assert sorted(e.alarm for e in service.evaluator.tick(later)) == [
            "room_temperature_critical.env_back",
            "room_temperature_high.env_back",
        ]
    finally:
        service.store.close()


async def test_bulk_reads_retained_states_once_then_only_batches(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """At connect the evaluator takes each device's retained state (a room already hot raises at start);
    after that a live state on the device's own topic is not read (the batch carries it): only the batch
    that says the room cooled clears the alarm."""
    loaded = load_site(DEMO_SITE)
    site = site_from_dict(site_dict(loaded, mosquitto), loaded.profiles)
    env = {"BCC_MQTT_PASSWORD": mosquitto.password("alarms")}
    config = build_alarms_config(site, env, fast_rules(tmp_path), tmp_path / "a.db", instance="bulk")
    hot = "room_temperature_high.env_front"
    async with probe(mosquitto, "gateway", subscribe=None) as gw, probe(mosquitto, "operator") as watch:
        await gw.publish(T.state("env_front"), {"temperature": 29.5, "ts": _iso()}, retain=True)
        async with running_alarms(config) as service:
            raised = await watch.wait_for(T.alarm_state(hot), lambda a: a["state"] == "active_unacked", 8)
            assert raised["value"] == 29.5
            mark = watch.mark()
            await gw.publish(T.state("env_front"), {"temperature": 21.0, "ts": _iso(1)})  # not read
            await gw.publish(
                T.bridge_telemetry(GATEWAY), {"env_back": [{"temperature": 22.0, "ts": _iso(1)}]}
            )
            # One publisher, one subscriber: had the evaluator still read env_front's own topic, that
            # state would have arrived before the batch that follows it.
            await eventually(lambda: "env_back" in service._last_state, timeout=5)
            assert service._last_state["env_front"][1]["temperature"] == 29.5
            await gw.publish(
                T.bridge_telemetry(GATEWAY), {"env_front": [{"temperature": 21.0, "ts": _iso(2)}]}
            )
            await watch.wait_for(T.alarm_state(hot), lambda a: a["state"] == "cleared_unacked", 8, since=mark)


async def test_the_portals_backlog_raises_and_clears_the_overdue_reports_alarm(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """The citizen side over the real broker: the backlog the portal publishes (retained, its payload
    function) with more than 5 reports past verification raises the alarm; back to 0 it clears. A
    backlog that is not a JSON object changes nothing."""
    loaded = load_site(DEMO_SITE)
    site = site_from_dict(site_dict(loaded, mosquitto), loaded.profiles)
    env = {"BCC_MQTT_PASSWORD": mosquitto.password("alarms")}
    config = build_alarms_config(site, env, fast_rules(tmp_path), tmp_path / "a.db", instance="citizen")
    alarm = "reports_verification_overdue.reports"

    def backlog(overdue: int) -> bytes:
        return orjson.dumps(backlog_payload(datetime.now(UTC), {"submitted": overdue}, {}, overdue, 0))

    async with probe(mosquitto, "portal", subscribe=None) as portal, probe(mosquitto, "operator") as watch:
        await portal.publish(T.report_backlog, backlog(7), retain=True)
        async with running_alarms(config):
            raised = await watch.wait_for(T.alarm_state(alarm), lambda a: a["state"] == "active_unacked", 8)
            assert raised["value"] == 7 and raised["limit"] == 5 and raised["severity"] == "medium"
            mark = watch.mark()
            await portal.publish(T.report_backlog, b"[]", retain=True)
            await portal.publish(T.report_backlog, backlog(0), retain=True)
            cleared = await watch.wait_for(T.alarm_state(alarm), lambda a: not a["active"], 8, since=mark)
            assert cleared["state"] == "cleared_unacked" and cleared["value"] == 0
