"""Alarm e-mails (docs/alarms.md, "Notifications"): the ``notify`` section validated with everything
else; on the portal's database (SQLite and PostgreSQL) and a fake clock, a new critical alarm reaches the
on-duty operators and the admins in each one's language, escalates to the roster's next person while
nobody acknowledges it, stops escalating once acknowledged, and the daily summary goes out once; a
restarted evaluator writes nothing twice. The portal's own outbox sender delivers them to a real SMTP
server, each once. An alarm with the longest id and a long text value still gets one whole SMS."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from bcc_common.gsm7 import SMS_SEPTETS, septets, to_gsm7
from devices.loader import DEMO_SITE, ConfigError, load_site
from iot_gateway.alarms.config import AlarmsConfig, build_alarms_config
from iot_gateway.alarms.engine import Alarm
from iot_gateway.alarms.notify import alarm_sms
from iot_gateway.alarms.rules import AlarmSpec, load_rules, parse_rules
from iot_gateway.alarms.service import AlarmService
from tests.support.alarm_mail import add_staff, alarm_outbox, drain
from tests.support.paths import ROOT
from tests.support.sms import fake_twilio
from tests.support.smtp import smtp_server, text_of

GATEWAY = "gateway_offline.bridge"
# 20:00 UTC is 03:00 WIB: the daily summary (07:00 WIB) is four hours away
START = datetime(2026, 12, 4, 20, 0, tzinfo=UTC).timestamp()
SUMMARY_AT = datetime(2026, 12, 5, 0, 0, tzinfo=UTC).timestamp()
ESCALATE_S = 120
RULES: dict[str, Any] = {
    "site": "bcc_room",
    "notify": {
        "critical": ["on_duty", "admin"],
        "high": ["on_duty"],
        "escalate_after_s": ESCALATE_S,
        "daily_summary_at": "07:00",
    },
    "rules": [
        {
            "id": "gateway_offline",
            "kind": "gateway_offline",
            "on_delay_s": 10,
            "severity": "critical",
            "message": {"id": "Gateway mati", "en": "Gateway offline"},
        },
        {
            "id": "co2_noisy",
            "kind": "high",
            "devices": ["env_front"],
            "point": "co2",
            "limit": 1000,
            "severity": "low",
            "notify": [],
            "message": {"id": "CO2 tinggi", "en": "CO2 high"},
        },
    ],
}
STAFF = [
    ("siti", "operator", "siti@binjai.test", "id"),
    ("budi", "operator", "budi@binjai.test", "en"),
    ("rahmat", "operator", "rahmat@binjai.test", "en"),
    ("kepala", "admin", "kepala@binjai.test", "id"),
]
ROSTER = {"on_duty": ["siti", "budi"], "escalation": ["rahmat", "kepala"]}


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def alarms_config(tmp_path: Path, db: str, rules: object = RULES, roster: object = ROSTER) -> AlarmsConfig:
    rules_file, roster_file = tmp_path / "rules.yaml", tmp_path / "roster.yaml"
    rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    roster_file.write_text(yaml.safe_dump(roster), encoding="utf-8")
    env = {"BCC_MQTT_PASSWORD": "unused", "BCC_ALARMS_DATABASE_URL": db}
    return build_alarms_config(load_site(DEMO_SITE), env, rules_file, instance="one", roster=roster_file)


def test_notify_problems_are_listed_with_the_rest() -> None:
    bad = {
        **RULES,
        "notify": {"critical": ["on_duty", "janitor"], "daily_summary_at": "25:00"},
        "rules": [
            {**RULES["rules"][1], "notify": ["nobody"]},
            {**RULES["rules"][1], "id": "co2_again", "escalate_after_s": 300},
        ],
    }
    with pytest.raises(ConfigError) as err:
        parse_rules(bad, load_site(DEMO_SITE), "r.yaml")
    text = "\n".join(err.value.problems)
    assert len(err.value.problems) == 4, text
    assert "r.yaml: notify.critical.#2: Input should be 'on_duty', 'operator' or 'admin'" in text
    assert "r.yaml: notify.daily_summary_at: String should match pattern" in text
    assert "r.yaml: rules.co2_noisy: notify.#1: Input should be" in text
    assert "rules.co2_again" in text and "'escalate_after_s' applies to critical rules only" in text


def test_a_bad_roster_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        alarms_config(tmp_path, "sqlite:///unused.db", roster={"on_duty": ["Siti!"], "backup": []})
    assert len(err.value.problems) == 2, err.value.problems


async def step_at(service: AlarmService, clock: Clock, t: float) -> None:
    clock.t = t
    await service.step()


async def test_new_alarm_escalation_and_daily_summary_once_each(tmp_path: Path, portal_db_url: str) -> None:
    add_staff(portal_db_url, STAFF)
    config = alarms_config(tmp_path, portal_db_url)
    clock = Clock(START)
    service = AlarmService(config, clock=clock)
    try:
        await service.step()  # takes the lease
        await service.handle(
            service.topics.bridge_state(service.config.loaded.site.gateway_id), b"offline", False
        )
        await step_at(service, clock, START + 9)
        assert alarm_outbox(portal_db_url) == []  # the on-delay runs
        await step_at(service, clock, START + 10)
        raised = alarm_outbox(portal_db_url)
        # critical: the on-duty operators and the admins, not rahmat (an operator off duty)
        assert sorted(r.recipient for r in raised) == [
            "budi@binjai.test",
            "kepala@binjai.test",
            "siti@binjai.test",
        ]
        assert {r.event for r in raised} == {"alarm_raised"}
        await step_at(service, clock, START + 10 + ESCALATE_S - 1)
        assert len(alarm_outbox(portal_db_url)) == 3
        await step_at(service, clock, START + 10 + ESCALATE_S)
        await step_at(service, clock, START + 10 + ESCALATE_S + 5)
        [first] = alarm_outbox(portal_db_url)[3:]
        assert (first.event, first.recipient) == ("escalation", "rahmat@binjai.test")
        assert first.subject == "[BCC ESCALATION] Gateway offline"
    finally:
        service.store.close()

    # a restarted evaluator (its memory of what it wrote is gone) writes the escalation no second time
    service = AlarmService(config, clock=clock)
    try:
        await step_at(service, clock, START + 10 + ESCALATE_S + 10)
        assert len(alarm_outbox(portal_db_url)) == 4
        await step_at(service, clock, START + 10 + 2 * ESCALATE_S)
        second = alarm_outbox(portal_db_url)[4:]
        assert [(r.event, r.recipient) for r in second] == [("escalation", "kepala@binjai.test")]
        assert "ESKALASI, belum diakui selama 4 menit: Gateway mati" in second[0].body
        ack = {"alarm": GATEWAY, "action": "ack", "by": "siti", "note": "genset"}
        await service.handle(service.topics.alarm_commands, orjson.dumps(ack), False)
        await step_at(service, clock, START + 10 + 5 * ESCALATE_S)
        assert len(alarm_outbox(portal_db_url)) == 5  # acknowledged: no more escalation

        # a low alarm with "notify: []" writes nothing
        await service.handle(service.topics.state("env_front"), b'{"co2": 1200}', False)
        assert service.evaluator.alarms["co2_noisy.env_front"].state.value == "active_unacked"
        assert len(alarm_outbox(portal_db_url)) == 5

        await step_at(service, clock, SUMMARY_AT - 1)
        assert len(alarm_outbox(portal_db_url)) == 5
        await step_at(service, clock, SUMMARY_AT)
        await step_at(service, clock, SUMMARY_AT + 60)
        summaries = alarm_outbox(portal_db_url)[5:]
        assert sorted((r.event, r.recipient) for r in summaries) == [
            ("daily_summary", "budi@binjai.test"),
            ("daily_summary", "siti@binjai.test"),
        ]
    finally:
        service.store.close()
    service = AlarmService(config, clock=clock)  # restarted the same morning: no second summary
    try:
        await step_at(service, clock, SUMMARY_AT + 3600)
        assert len(alarm_outbox(portal_db_url)) == 7
    finally:
        service.store.close()

    with smtp_server() as (inbox, port):
        rows = drain(portal_db_url, port)
        messages = inbox.wait(len(rows))
    assert len(messages) == len(rows) == 7
    mail = {(m["To"], m["Subject"]): text_of(m) for m in messages}
    assert len(mail) == 7  # every (recipient, subject) once
    assert mail["siti@binjai.test", "[BCC KRITIS] Gateway mati"].startswith("Alarm baru: Gateway mati")
    english = mail["budi@binjai.test", "[BCC CRITICAL] Gateway offline"]
    assert english.startswith("New alarm: Gateway offline") and "Alarm: gateway_offline.bridge" in english
    summary = mail["budi@binjai.test", "[BCC] Daily alarm summary 2026-12-05"]
    assert "Alarms raised in the last 24 hours: 2" in summary
    assert "gateway_offline.bridge [critical] active_acked: Gateway offline" in summary
    assert "Ringkasan alarm harian 2026-12-05" in " ".join(s for _, s in mail)


SMS_RULES: dict[str, Any] = {
    **RULES,
    # the CO2 rule made "high" and notified: e-mailed to the on-duty operators, never by SMS
    "rules": [RULES["rules"][0], {**RULES["rules"][1], "severity": "high", "notify": None}],
}
SMS_STAFF = [*STAFF, ("andi", "operator", "", "en")]  # a phone and no e-mail address
PHONES = {"siti": "0812 3456 7890", "andi": "+62 852-1111-2222", "rahmat": "0813 9999 0000"}


async def test_critical_alarms_and_escalations_reach_phones_by_sms_exactly_once(
    tmp_path: Path, portal_db_url: str
) -> None:
    """#20's SMS: the on-duty operators with a phone get a new critical alarm by SMS in their language,
    the escalation reaches the next person's phone, a high alarm goes by e-mail only; a restarted
    evaluator writes nothing twice, and two portal workers send each SMS once through the provider."""
    add_staff(portal_db_url, SMS_STAFF, PHONES)
    roster = {"on_duty": ["siti", "budi", "andi"], "escalation": ["rahmat", "kepala"]}
    config = alarms_config(tmp_path, portal_db_url, rules=SMS_RULES, roster=roster)
    clock = Clock(START)
    service = AlarmService(config, clock=clock)
    try:
        await service.step()
        await service.handle(
            service.topics.bridge_state(service.config.loaded.site.gateway_id), b"offline", False
        )
        await step_at(service, clock, START + 10)
        sms = [r for r in alarm_outbox(portal_db_url) if r.channel == "sms"]
        assert sorted(r.recipient for r in sms) == ["+6281234567890", "+6285211112222"]  # siti, andi
        await service.handle(service.topics.state("env_front"), b'{"co2": 1200}', False)
        await step_at(service, clock, START + 11)
        high = [r for r in alarm_outbox(portal_db_url) if "CO2" in r.subject]
        assert sorted(r.recipient for r in high) == ["budi@binjai.test", "siti@binjai.test"]  # no SMS
        await step_at(service, clock, START + 10 + ESCALATE_S)
    finally:
        service.store.close()
    service = AlarmService(config, clock=clock)  # restarted: nothing written twice
    try:
        await step_at(service, clock, START + 10 + ESCALATE_S + 5)
    finally:
        service.store.close()
    rows = alarm_outbox(portal_db_url)
    sms = [r for r in rows if r.channel == "sms"]
    assert [(r.event, r.recipient) for r in sms[2:]] == [("escalation", "+6281399990000")]  # rahmat
    assert len(rows) == 3 + 2 + 2 + 2  # critical e-mails, critical SMS, high e-mails, rahmat's two

    with smtp_server() as (inbox, port), fake_twilio() as twilio:
        drain(portal_db_url, port, sms=twilio.settings())
        inbox.wait(len(rows) - 3)
        texts = {m.to: m.body for m in twilio.wait(3)}
    assert len(twilio.messages) == 3 and len(inbox.messages) == len(rows) - 3
    assert texts["+6281234567890"].startswith("BCC KRITIS: Gateway mati (gateway_offline.bridge")
    assert texts["+6285211112222"].startswith("BCC CRITICAL: Gateway offline (gateway_offline.bridge")
    assert texts["+6281399990000"].startswith("BCC ESCALATION 2 min: Gateway offline")
    assert all(t.endswith("03:00 WIB") and septets(t) <= SMS_SEPTETS for t in texts.values())


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_shipped_rules_sms_fits_one_message_unshortened(lang: str) -> None:
    """Each shipped rule's alarm SMS, new and escalated after 24 hours, with a long value: 160 GSM-7
    characters at most, its message whole."""
    rules = load_rules(ROOT / "devices/sites/alarms/bcc_room.yaml", load_site(DEMO_SITE))
    for spec in rules.alarms:
        alarm = Alarm(spec, value=-12345.678)
        for kind in ("alarm_raised", "escalation"):
            text = alarm_sms(lang, kind, alarm, START, START + 86400)
            assert septets(text) <= SMS_SEPTETS and "..." not in text, text
            assert to_gsm7(getattr(spec.rule.message, lang)) in text and spec.id in text


LONG_ID = ("door_open_after_hours_" * 3)[:48]  # the longest rule id (bcc_common/ident.py)
LONG_RULES: dict[str, Any] = {
    **RULES,
    "rules": [
        {
            "id": LONG_ID,
            "kind": "state",
            "devices": ["lights_a"],
            "point": "relay_1",
            "value": "OFF",  # anything but ON raises it, the value kept as reported
            "severity": "critical",
            "message": {"id": "Pintu ruang server terbuka di luar jam kerja", "en": "Server room door open"},
        }
    ],
}
# a text value of 500 characters, with characters of the extension table and outside the alphabet
LONG_VALUE = ("pintu [terbuka] € " + "中" + "x" * 50) * 8


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("device", ["lights_a", "d" * 48])  # the demo's device, a site's longest id
def test_an_alarm_sms_with_a_long_id_and_a_long_text_value_is_one_whole_sms(lang: str, device: str) -> None:
    [rule_spec] = parse_rules(LONG_RULES, load_site(DEMO_SITE), "r.yaml").alarms
    spec = AlarmSpec(f"{LONG_ID}.{device}", rule_spec.rule, device)
    alarm = Alarm(spec, value=LONG_VALUE[:500])
    message = to_gsm7(getattr(spec.rule.message, lang))
    for kind in ("alarm_raised", "escalation"):
        text = alarm_sms(lang, kind, alarm, START, START + 86400)
        assert septets(text) <= SMS_SEPTETS, text
        assert f"({spec.id}=pintu [terbuka]" in text and text.endswith(") 03:00 WIB"), text
        if device == "lights_a":  # the value was cut to its 40 characters: the message keeps its room
            assert f": {message[:12]}" in text, text
    # Only the parts never shortened, already over 160 (an escalation "unacknowledged" for 10^298
    # minutes): the alarm id and its time, then the tag, cut to one SMS.
    text = alarm_sms(lang, "escalation", alarm, START, 1e300)
    assert septets(text) <= SMS_SEPTETS and text.startswith(f"BCC {spec.id} 03:00 WIB "), text


async def test_a_long_alarm_value_neither_breaks_its_sms_nor_stops_the_evaluator(
    tmp_path: Path, portal_db_url: str
) -> None:
    """The review's case: a device state whose text value cannot shrink. Its SMS fits; the transition
    is stored and the evaluator judges the next state (the SMS's ValueError used to escape _commit
    before the store's save, and the alarm service's TaskGroup after it)."""
    add_staff(portal_db_url, STAFF, PHONES)
    config = alarms_config(tmp_path, portal_db_url, rules=LONG_RULES)
    clock = Clock(START)
    service = AlarmService(config, clock=clock)
    alarm_id = f"{LONG_ID}.lights_a"
    try:
        await service.step()  # takes the lease
        state = service.topics.state("lights_a")
        await service.handle(state, orjson.dumps({"relay_1": LONG_VALUE[:500]}), False)
        assert service.evaluator.alarms[alarm_id].state.value == "active_unacked"
        assert service.store.load()[alarm_id]["state"] == "active_unacked"
        sms = [r for r in alarm_outbox(portal_db_url) if r.channel == "sms"]
        assert [r.recipient for r in sms] == ["+6281234567890"]  # siti, the on-duty phone
        text = sms[0].body
        assert septets(text) <= SMS_SEPTETS and text.startswith("BCC KRITIS: Pintu ruang server"), text
        assert f"({alarm_id}=pintu [terbuka]" in text and text.endswith("03:00 WIB"), text
        await service.handle(state, b'{"relay_1": "ON"}', False)
        await step_at(service, clock, START + 1)
        assert service.store.load()[alarm_id]["state"] == "cleared_unacked"
    finally:
        service.store.close()
