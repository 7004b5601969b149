"""MQTT payloads -> line protocol, exactly as docs/influxdb.md describes (no servers needed)."""

from __future__ import annotations

import orjson

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site
from iot_gateway.recorder.lineproto import escape_key, field, iso_to_ns, line, ts_to_ns
from iot_gateway.recorder.schema import REPORTS_RP, Schema

SCHEMA = Schema(load_site(DEMO_SITE), Topics())
NS = 1_795_774_502_120_000_000  # 2026-11-27T10:15:02.120Z


def test_line_protocol_escaping_and_types() -> None:
    text = line("m x", {"b": "v,1", "a": "x=y", "empty": ""}, {"f k": 'say "hi"\n', "i": 3, "b": True}, 5)
    assert text == r'm\ x,a=x\=y,b=v\,1 f\ k="say \"hi\"\n",i=3i,b=true 5'
    assert field(float("nan")) is None and field(1.0) == "1.0" and escape_key("a\\") == "a_"
    assert iso_to_ns("2026-11-27T10:15:02.120Z") == NS
    assert ts_to_ns(1795774502.12) == NS


def test_device_state_is_one_typed_line_per_message() -> None:
    payload = {"relay_1": "ON", "relay_2": "OFF", "device_address": 1, "ts": "2026-11-27T10:15:02.120Z"}
    rec = SCHEMA.convert("bcc/lights_a", orjson.dumps(payload), 0)
    assert rec.problem is None
    assert rec.lines == [
        ("relay8,device=lights_a,site=bcc_room relay_1=1i,relay_2=0i,device_address=1.0 " + str(NS), 3)
    ]
    wall = SCHEMA.convert("bcc/wall", b'{"layout": "split_4", "ts": "2026-11-27T10:15:02.120Z"}', 0)
    assert 'layout="split_4"' in wall.lines[0][0]


def test_state_fast_path_matches_the_generic_line_builder() -> None:
    """Schema builds state lines from pre-escaped pieces; they must equal lineproto.line's output for
    every point of every device of the demo site (numbers, booleans, enumerations; NaN dropped)."""
    loaded = load_site(DEMO_SITE)
    for device in loaded.site.devices:
        profile = loaded.profile_of(device)
        payload: dict[str, object] = {"ts": "2026-11-27T10:15:02.120Z"}
        expected: dict[str, int | float | str] = {}
        for n, point in enumerate(profile.points):
            if point.is_bool:
                payload[point.key] = ("ON", "OFF", True, False)[n % 4]
                expected[point.key] = 1 if payload[point.key] in ("ON", True) else 0
            elif point.enum is not None:
                payload[point.key] = expected[point.key] = next(iter(point.enum.values()))
            else:
                payload[point.key] = n * 1.25 if n % 2 else n
                expected[point.key] = float(n * 1.25 if n % 2 else n)
        rec = SCHEMA.convert(f"bcc/{device.id}", orjson.dumps(payload), 0)
        assert rec.problem is None
        want = line(profile.model, {"site": "bcc_room", "device": device.id}, expected, NS)
        assert rec.lines == [(want, len(expected))]


def test_bulk_telemetry_gives_the_same_lines_as_device_topics() -> None:
    lights = {"relay_1": "ON", "relay_2": "OFF", "ts": "2026-11-27T10:15:02.120Z"}
    env = {"temperature": 21.5, "ts": "2026-11-27T10:15:02.120Z"}
    bulk = {"lights_a": [lights, {**lights, "relay_1": "OFF"}], "env_front": [env, {"humidity": "wet"}]}
    rec = SCHEMA.convert("bcc/bridge/bcc_room/telemetry", orjson.dumps(bulk), 0)
    one = [
        SCHEMA.convert(f"bcc/{d}", orjson.dumps(s), 0).lines
        for d, s in [("lights_a", lights), ("env_front", env)]
    ]
    assert rec.lines[0] == one[0][0] and rec.lines[2] == one[1][0] and len(rec.lines) == 3
    assert rec.lines[1][0].startswith("relay8,device=lights_a,site=bcc_room relay_1=0i")
    # the bad state (no timestamp, a word for a number) is reported; the good ones are kept
    assert rec.problem is not None and rec.problem.startswith("env_front:")
    assert SCHEMA.convert("bcc/bridge/bcc_room/telemetry", b"[1]", 0).problem
    assert SCHEMA.convert("bcc/bridge/bcc_room/telemetry", b'{"lights_a": {"relay_1": "ON"}}', 0).problem


def test_bad_values_are_dead_lettered_and_good_ones_kept() -> None:
    rec = SCHEMA.convert(
        "bcc/env_front", b'{"temperature": 21.5, "humidity": "wet", "x": 1, "ts": "2026-11-27T10:15:02Z"}', 0
    )
    assert rec.lines and "temperature=21.5" in rec.lines[0][0] and "humidity" not in rec.lines[0][0]
    assert rec.problem is not None and "humidity" in rec.problem and "x: not in profile" in rec.problem
    assert SCHEMA.convert("bcc/nosuch", b'{"ts": "2026-11-27T10:15:02Z"}', 0).problem
    assert SCHEMA.convert("bcc/lights_a", b"not json", 0).problem
    assert SCHEMA.convert("bcc/lights_a", b'{"relay_1": "ON"}', 0).problem  # no source timestamp


def test_report_events_and_backlog() -> None:
    event = {
        "event": "closed", "report": "BJI-2026-000123", "category": "perizinan", "agency": "dpmptsp",
        "kecamatan": "binjai_kota", "status": "closed", "resolution": "needs_budget", "duration_s": 3600,
        "late": True, "ts": "2026-11-27T10:15:02.120Z",
    }  # fmt: skip
    rec = SCHEMA.convert("bcc/reports/events", orjson.dumps(event), 0)
    ((text, n),) = rec.lines
    assert rec.rp == REPORTS_RP and n == 3
    assert text.startswith(
        "report_event,agency=dpmptsp,category=perizinan,event=closed,kecamatan=binjai_kota,late=true,"
        'resolution=needs_budget count=1i,report="BJI-2026-000123",duration_s=3600.0 '
    )
    ts = int(text.rsplit(" ", 1)[1])
    assert 0 <= ts - NS < 1000  # nudged below the microsecond, the same on every retry
    assert SCHEMA.convert("bcc/reports/events", orjson.dumps(event), 0).lines == rec.lines
    backlog = {"ts": "2026-11-27T10:15:00Z", "open": {"new": 4, "verified": 2},
               "by_category": {"anggaran": 6}, "overdue_verification": 1, "overdue_response": 0}  # fmt: skip
    lines = [t for t, _ in SCHEMA.convert("bcc/reports/backlog", orjson.dumps(backlog), 0).lines]
    assert lines[0].startswith("report_backlog,status=new open=4i ")
    assert lines[2].startswith("report_backlog_category,category=anggaran open=6i ")
    assert lines[3].startswith("report_overdue verification=1i,response=0i ")


def test_a_confidential_reports_event_is_stored_without_a_tracking_code() -> None:
    """The portal publishes ``report: null`` for a confidential report: still counted (the backlog and
    the closure statistics need it), with no field that could identify it."""
    event = {
        "event": "closed", "report": None, "category": "perizinan", "agency": "dpmptsp",
        "kecamatan": "binjai_kota", "status": "closed", "resolution": "rejected", "duration_s": 60,
        "late": False, "ts": "2026-11-27T10:15:02.120Z",
    }  # fmt: skip
    rec = SCHEMA.convert("bcc/reports/events", orjson.dumps(event), 0)
    assert rec.problem is None
    ((text, n),) = rec.lines
    assert n == 2 and "report=" not in text and "None" not in text
    assert " count=1i,duration_s=60.0 " in text
    assert SCHEMA.convert("bcc/reports/events", orjson.dumps(event), 0).lines == rec.lines  # same nudge


def test_availability_health_and_responses() -> None:
    rec = SCHEMA.convert("bcc/lights_a/availability", b"offline", 42)
    assert rec.lines == [("availability,device=lights_a,site=bcc_room online=0i 42", 1)]
    assert rec.dedupe_topic == "bcc/lights_a/availability"
    bridge = SCHEMA.convert("bcc/bridge/bcc_room/state", b"online", 43)
    assert bridge.lines[0][0].startswith("availability,device=bridge,")
    # Exactly what the gateway's _health_loop publishes: ts is epoch seconds (a float), not ISO text.
    body = {
        "status": "ok", "mqtt_connected": True, "devices": 6, "devices_online": 5,
        "devices_offline": ["env_front"], "commands": 9, "polls_per_s": 5.9,
        "poll_latency_ms_mean": 1.234, "request_errors_total": 2.0, "missed_deadlines_total": 0.0,
        "max_queue_depth": 1, "commands_ok": 8.0, "commands_timeout": 1.0, "ts": 1795774502.12,
    }  # fmt: skip
    health = SCHEMA.convert("bcc/bridge/bcc_room/health", orjson.dumps(body), 0)
    assert health.problem is None
    ((text, n),) = health.lines
    assert text == (
        'gateway_health,site=bcc_room status="ok",mqtt_connected=1i,devices=6.0,devices_online=5.0,'
        'devices_offline="env_front",commands=9.0,polls_per_s=5.9,poll_latency_ms_mean=1.234,'
        "request_errors_total=2.0,missed_deadlines_total=0.0,max_queue_depth=1.0,commands_ok=8.0,"
        f"commands_timeout=1.0 {NS}"
    )
    assert n == 13
    # No poll in the period: poll_latency_ms_mean is null and simply absent; a field keeps its type.
    idle = SCHEMA.convert(
        "bcc/bridge/bcc_room/health", b'{"devices": 0, "poll_latency_ms_mean": null, "ts": 1}', 0
    )
    assert idle.lines == [("gateway_health,site=bcc_room devices=0.0 1000000000", 1)]
    resp = {"device": "lights_a", "transaction": "t1", "status": "ok", "ts": "2026-11-27T10:15:02.120Z"}
    text = SCHEMA.convert("bcc/lights_a/response", orjson.dumps(resp), 0).lines[0][0]
    assert text.startswith(
        'command_response,device=lights_a,site=bcc_room,status=ok count=1i,transaction="t1" '
    )


def test_alarm_events_become_the_alarm_timeline() -> None:
    """bcc/alarms/events (docs/alarms.md): tags per alarm, the state as a string field, a numeric value as
    ``value`` and a text one (availability) as ``value_text``; the time is ``at`` nudged by ``seq``."""
    at = "2026-11-27T10:15:02.120Z"
    hot = {"seq": 7, "alarm": "room_temperature_high.env_front", "event": "raised", "state": "active_unacked",
           "severity": "high", "rule": "room_temperature_high", "device": "env_front", "who": "system",
           "note": "", "value": 27.9, "at": at, "evaluator": "one"}  # fmt: skip
    rec = SCHEMA.convert("bcc/alarms/events", orjson.dumps(hot), 0)
    assert rec.problem is None and rec.rp == ""
    [(text, n)] = rec.lines
    prefix = (
        "alarm_event,alarm=room_temperature_high.env_front,device=env_front,event=raised,"
        "rule=room_temperature_high,severity=high "
    )
    assert text.startswith(prefix) and n == 5
    assert 'state="active_unacked",count=1i,seq=7i,value=27.9,who="system" ' in text
    again = SCHEMA.convert("bcc/alarms/events", orjson.dumps(hot), 0).lines[0][0]
    assert again == text and NS <= int(text.rsplit(" ", 1)[1]) < NS + 1000  # a re-publish overwrites
    gateway = {**hot, "seq": 8, "alarm": "gateway_offline", "rule": "gateway_offline", "device": None,
               "severity": "critical", "value": "offline", "who": ""}  # fmt: skip
    text = SCHEMA.convert("bcc/alarms/events", orjson.dumps(gateway), 0).lines[0][0]
    assert text.startswith(
        "alarm_event,alarm=gateway_offline,event=raised,rule=gateway_offline,severity=critical "
    )
    assert 'value_text="offline"' in text and "who=" not in text
    for bad in ({**hot, "state": "burning"}, {**hot, "severity": "urgent"}, {**hot, "seq": "7"}, [hot]):
        refused = SCHEMA.convert("bcc/alarms/events", orjson.dumps(bad), 0)
        assert refused.problem and not refused.lines


def test_a_null_point_is_skipped_and_a_state_of_nulls_writes_no_line() -> None:
    """null: the device reports no valid value (a NaN float). Neither NaN nor null is written, and it
    is not a bad value (nothing dead-lettered)."""
    rec = SCHEMA.convert(
        "bcc/meter_main", b'{"voltage_l1": null, "voltage_l2": 231.5, "ts": "2026-11-27T10:15:02Z"}', 0
    )
    assert rec.problem is None and len(rec.lines) == 1
    assert "voltage_l2=231.5" in rec.lines[0][0] and "voltage_l1" not in rec.lines[0][0]
    assert rec.lines[0][1] == 1
    empty = SCHEMA.convert("bcc/meter_main", b'{"voltage_l1": null, "ts": "2026-11-27T10:15:02Z"}', 0)
    assert empty.problem is None and empty.lines == []
