"""Operators away from the room are reached: alarm e-mails written into the portal's outbox by the
active evaluator (docs/alarms.md, "Notifications").

- a new alarm (``raised``) is e-mailed to the audience of its severity (the rules file's ``notify``, or
  the rule's own), in each recipient's language (the account's ``lang``: Bahasa Indonesia or English);
- a critical alarm still unacknowledged after ``escalate_after_s`` goes to the roster's next person in
  the escalation list, after twice as long to the one after, and so on;
- once a day at ``daily_summary_at`` (WIB) the on-duty operators get the last 24 hours: what was raised,
  the most frequent and chattering alarms, the standing ones and what is active now.

New alarms of the severities in ``notify.sms`` (critical by default) and escalations also go by SMS,
one message of at most 160 GSM-7 characters in the recipient's language, to the accounts with a phone
number (``bcc admin set-contact --phone``); the portal sends them through its SMS provider.

Who is on duty: the roster file (``--roster``, YAML: ``on_duty`` and ``escalation``, lists of portal
usernames), read again whenever it changes; without one, every active ``operator`` account is on duty
and the ``admin`` accounts are the escalation list. Only accounts with an e-mail address (or, for SMS,
a phone number) are written to.

Exactly once: only the lease holder writes, and each e-mail's ``dedupe_key`` (unique in the outbox) is
the digest of its kind, the alarm's occurrence (its id and the time it was raised), and the recipient,
so a takeover, a restart or a repeated write adds nothing (an SMS's key also names its channel). The
portal's workers claim and send each row once (portal/services/notify.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bcc_common.gsm7 import SMS_SEPTETS, fit, sms_text, to_gsm7
from bcc_common.ident import Ident
from bcc_contract.alarm_health import ActiveAlarm, AlarmHealth, HistoryEvent, compute_health
from devices.loader import ConfigError, format_validation
from iot_gateway.alarms.engine import Alarm, AlarmEvent, AlarmState, Evaluator
from iot_gateway.alarms.rules import LoadedRules
from iot_gateway.alarms.store import AlarmStore, Notice, StaffMember

log = structlog.get_logger(__name__)

WIB = timezone(timedelta(hours=7), "WIB")
# An alarm's value in its SMS: a number is short; a text value (a device's state, a reason) is cut here
# first, so that the rule's message keeps its room.
SMS_VALUE_SEPTETS = 40
SMS_TEMPLATE = "BCC {tag}: {message} ({alarm}{value}) {at}"
ACTIVE_STATES = (AlarmState.ACTIVE_UNACKED, AlarmState.ACTIVE_ACKED)
SEVERITY_TEXT = {
    "id": {"critical": "KRITIS", "high": "TINGGI", "medium": "SEDANG", "low": "RENDAH"},
    "en": {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW"},
}
FOOTER = {
    "id": "Akui alarm di konsol operator (/konsol). Pusat Komando Kota Binjai - e-mail otomatis.",
    "en": "Acknowledge it on the operator console (/konsol). Binjai Command Center - automatic e-mail.",
}

WORDS = {
    "id": {
        "new": "Alarm baru",
        "escalation": "ESKALASI, belum diakui selama {minutes} menit",
        "escalation_tag": "ESKALASI",
        "severity": "Tingkat",
        "value": "Nilai",
        "since": "Sejak",
        "sms_escalation": "ESKALASI {minutes} mnt",
    },
    "en": {
        "new": "New alarm",
        "escalation": "ESCALATION, not acknowledged for {minutes} minutes",
        "escalation_tag": "ESCALATION",
        "severity": "Severity",
        "value": "Value",
        "since": "Since",
        "sms_escalation": "ESCALATION {minutes} min",
    },
}


class Roster(BaseModel):
    """The on-duty roster: who is told of new alarms, and in which order an alarm escalates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_duty: tuple[Ident, ...] = ()
    escalation: tuple[Ident, ...] = ()


def load_roster(path: Path) -> Roster:
    """Read and validate a roster file; ConfigError lists every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not valid YAML: {err}"]) from err
    try:
        return Roster.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation(str(path), raw, err)) from err


def dedupe_key(kind: str, occurrence: str, recipient: str) -> str:
    return hashlib.sha256(f"{kind}\0{occurrence}\0{recipient}".encode()).hexdigest()


def wib(ts: float) -> str:
    return datetime.fromtimestamp(ts, WIB).strftime("%Y-%m-%d %H:%M WIB")


class AlarmNotifier:
    """Decides who gets which alarm e-mail; the service writes the notices in its own transactions."""

    def __init__(self, rules: LoadedRules, store: AlarmStore, roster_path: Path | None = None) -> None:
        self.rules = rules
        self.policy = rules.book.notify
        self.store = store
        self.roster_path = roster_path
        self._roster: Roster | None = load_roster(roster_path) if roster_path is not None else None
        self._roster_mtime = self._mtime()
        self._written: set[str] = set()  # keys this process wrote (saves asking the database again)
        self._summary_day: str | None = None
        # the alarms that may escalate (critical ones), looked at on every tick
        self._escalating = [(s.id, after) for s in rules.alarms if (after := s.escalate_after_s(self.policy))]
        # alarm -> (raised_at, the escalation level already handled): a tick asks the staff table only
        # when an alarm reaches a new level, not on every tick while it stays unacknowledged
        self._escalated: dict[str, tuple[float, int]] = {}

    # --- who ---------------------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return self.roster_path.stat().st_mtime if self.roster_path is not None else None
        except OSError:
            return None

    def roster(self) -> Roster | None:
        """The roster, read again when its file changed (a bad new version keeps the last good one)."""
        mtime = self._mtime()
        if self.roster_path is not None and mtime != self._roster_mtime:
            self._roster_mtime = mtime
            try:
                self._roster = load_roster(self.roster_path)
                log.info("alarms_roster_loaded", path=str(self.roster_path))
            except ConfigError as err:
                log.error("alarms_roster_invalid", problems=err.problems)
        return self._roster

    def _people(self) -> tuple[dict[str, StaffMember], list[str], list[str]]:
        """Accounts with an e-mail by username, the on-duty usernames and the escalation order."""
        people = {m.username: m for m in self.store.staff()}
        roster = self.roster()
        if roster is None:
            on_duty = [u for u, m in people.items() if m.role == "operator"]
            escalation = [u for u, m in people.items() if m.role == "admin"]
        else:
            on_duty = [u for u in roster.on_duty if u in people]
            escalation = [u for u in roster.escalation if u in people]
        return people, on_duty, escalation

    def recipients(self, audience: Iterable[str]) -> list[StaffMember]:
        people, on_duty, _ = self._people()
        chosen: list[str] = []
        for group in audience:
            names = on_duty if group == "on_duty" else [u for u, m in people.items() if m.role == group]
            chosen += [u for u in names if u not in chosen]
        return [people[u] for u in chosen]

    # --- what --------------------------------------------------------------------------------------
    def on_events(self, events: Iterable[AlarmEvent], evaluator: Evaluator) -> list[Notice]:
        """The e-mails of newly raised alarms."""
        notices: list[Notice] = []
        raised = [e for e in events if e.event == "raised"]
        if not raised or not self.store.notifying:
            return notices
        for event in raised:
            alarm = evaluator.alarms[event.alarm]
            for person in self.recipients(alarm.spec.audience(self.policy)):
                notices += self._alarm_notices("alarm_raised", alarm, event.at, person)
        return self._new(notices)

    def escalations(self, evaluator: Evaluator, now: float) -> list[Notice]:
        """Critical alarms unacknowledged for ``escalate_after_s`` x k: the k-th person of the
        escalation list (once per occurrence and person)."""
        due: list[tuple[Alarm, int]] = []
        for alarm_id, after in self._escalating:
            alarm = evaluator.alarms[alarm_id]
            if alarm.state is not AlarmState.ACTIVE_UNACKED or alarm.raised_at is None:
                self._escalated.pop(alarm_id, None)
                continue
            level = int((now - alarm.raised_at) // after)
            raised_at, handled = self._escalated.get(alarm_id, (alarm.raised_at, 0))
            if level >= 1 and (level > handled or raised_at != alarm.raised_at):
                due.append((alarm, level))
        if not due or not self.store.notifying:
            return []
        for alarm, level in due:
            assert alarm.raised_at is not None
            self._escalated[alarm.spec.id] = (alarm.raised_at, level)
        people, _, escalation = self._people()
        notices = []
        for alarm, level in due:
            assert alarm.raised_at is not None
            for name in escalation[:level]:
                notices += self._alarm_notices("escalation", alarm, alarm.raised_at, people[name], now)
        return self._new(notices)

    def daily_summary(self, evaluator: Evaluator, now: float) -> list[Notice]:
        """Once a day at ``daily_summary_at`` (WIB): the last 24 hours to ``daily_summary_to``."""
        local = datetime.fromtimestamp(now, WIB)
        day = local.date().isoformat()
        if self._summary_day == day or local.strftime("%H:%M") < self.policy.daily_summary_at:
            return []
        self._summary_day = day
        audience = self.recipients(self.policy.daily_summary_to) if self.store.notifying else []
        audience = [person for person in audience if person.email]  # by e-mail only
        if not audience:
            return []
        health = health_of(self.store, self.rules, now)
        active = sorted(
            (a for a in evaluator.alarms.values() if a.state is not AlarmState.NORMAL),
            key=lambda a: a.spec.id,
        )
        notices = []
        for person in audience:
            subject, body = summary_text(person.lang, day, health, active)
            key = dedupe_key("daily_summary", day, person.username)
            notices.append(Notice(key, "daily_summary", person.email, subject, body))
        return self._new(notices)

    def _alarm_notices(
        self, kind: str, alarm: Alarm, raised_at: float, person: StaffMember, now: float | None = None
    ) -> list[Notice]:
        """The e-mail (to an account with an address) and the SMS (to one with a phone, for the
        severities in ``notify.sms``) of ``alarm`` for ``person``."""
        occurrence = f"{alarm.spec.id}@{raised_at:.3f}"
        notices = []
        if person.email:
            subject, body = alarm_text(person.lang, kind, alarm, raised_at, now)
            key = dedupe_key(kind, occurrence, person.username)
            notices.append(Notice(key, kind, person.email, subject, body))
        if person.phone and alarm.spec.severity in self.policy.sms:
            text = alarm_sms(person.lang, kind, alarm, raised_at, now)
            key = dedupe_key(f"{kind}/sms", occurrence, person.username)
            notices.append(Notice(key, kind, person.phone, "SMS", text, channel="sms"))
        return notices

    def _new(self, notices: list[Notice]) -> list[Notice]:
        fresh = [n for n in notices if n.key not in self._written]
        self._written.update(n.key for n in fresh)
        return fresh


def health_of(store: AlarmStore, rules: LoadedRules, now: float, window_s: float = 86400.0) -> AlarmHealth:
    """Alarm health (EEMUA 191) from the history and the alarm records in the database (so a standby
    computes the same as the active evaluator)."""
    history = [HistoryEvent(a, e, at, who) for a, e, at, who in store.events_since(now - window_s)]
    severities = {s.id: s.severity for s in rules.alarms}
    active = [
        ActiveAlarm(alarm_id, severities[alarm_id], float(rec["raised_at"]))
        for alarm_id, rec in store.load().items()
        if rec.get("active")
        and rec.get("raised_at") is not None
        and alarm_id in severities
        and rec.get("state") != AlarmState.NORMAL.value
    ]
    return compute_health(history, active, now, window_s)


def alarm_text(lang: str, kind: str, alarm: Alarm, raised_at: float, now: float | None) -> tuple[str, str]:
    """Subject and body of a new-alarm or escalation e-mail in ``lang`` ("id" or "en")."""
    lang = "en" if lang == "en" else "id"
    words = WORDS[lang]
    spec = alarm.spec
    message: str = getattr(spec.rule.message, lang)
    severity = SEVERITY_TEXT[lang][spec.severity]
    if kind == "escalation":
        head = words["escalation"].format(minutes=round(((now or raised_at) - raised_at) / 60))
        tag = words["escalation_tag"]
    else:
        head, tag = words["new"], severity
    lines = [f"{head}: {message}", "", f"Alarm: {spec.id}", f"{words['severity']}: {severity}"]
    if alarm.value is not None:
        lines.append(f"{words['value']}: {alarm.value}")
    lines += [f"{words['since']}: {wib(raised_at)}", "", FOOTER[lang]]
    return f"[BCC {tag}] {message}", "\n".join(lines) + "\n"


def alarm_sms(lang: str, kind: str, alarm: Alarm, raised_at: float, now: float | None) -> str:
    """The SMS of a new alarm or an escalation in ``lang``: severity (or escalation), message, alarm and
    value, time raised; one SMS (160 GSM-7 characters): a value longer than SMS_VALUE_SEPTETS is cut to
    that, then the message and after it the value are shortened if they must be. Never raises for a
    long text: if even that cannot fit, the alarm id, time and tag, cut to one SMS."""
    lang = "en" if lang == "en" else "id"
    words = WORDS[lang]
    spec = alarm.spec
    if kind == "escalation":
        tag = words["sms_escalation"].format(minutes=round(((now or raised_at) - raised_at) / 60))
    else:
        tag = SEVERITY_TEXT[lang][spec.severity]
    value = "" if alarm.value is None else fit(to_gsm7(f"={alarm.value}"), SMS_VALUE_SEPTETS)
    at = datetime.fromtimestamp(raised_at, WIB).strftime("%H:%M WIB")
    values = {
        "tag": tag,
        "message": getattr(spec.rule.message, lang),
        "alarm": spec.id,
        "value": value,
        "at": at,
    }
    try:
        return sms_text(SMS_TEMPLATE, values, shrink=("message", "value"))
    except ValueError:  # the parts that are never shortened are over 160 already (an enormous tag)
        log.warning("alarm_sms_minimal", alarm=spec.id, kind=kind)
        return fit(to_gsm7(f"BCC {spec.id} {at} {tag}"), SMS_SEPTETS)


def summary_text(lang: str, day: str, health: AlarmHealth, active: list[Alarm]) -> tuple[str, str]:
    """Subject and body of the daily summary in ``lang``."""
    en = lang == "en"
    t: dict[str, Any] = (
        {
            "subject": f"[BCC] Daily alarm summary {day}",
            "raised": f"Alarms raised in the last 24 hours: {health.raised} ({health.per_hour:g} per hour, "
            f"busiest hour {health.peak_hour})",
            "frequent": "Most frequent:",
            "chattering": "Chattering (more than 3 transitions in a minute):",
            "standing": "Standing (active more than 24 hours):",
            "active": "Not normal now:",
            "none": "none",
            "hours": "h",
        }
        if en
        else {
            "subject": f"[BCC] Ringkasan alarm harian {day}",
            "raised": f"Alarm dalam 24 jam terakhir: {health.raised} ({health.per_hour:g} per jam, "
            f"jam tersibuk {health.peak_hour})",
            "frequent": "Paling sering:",
            "chattering": "Berkedip (lebih dari 3 perubahan dalam semenit):",
            "standing": "Menetap (aktif lebih dari 24 jam):",
            "active": "Belum normal saat ini:",
            "none": "tidak ada",
            "hours": "jam",
        }
    )
    lines = [t["raised"], "", t["frequent"]]
    lines += [f"  {a}: {n}x" for a, n in health.frequent] or [f"  {t['none']}"]
    lines += ["", t["chattering"]]
    lines += [f"  {a}: {n}" for a, n in health.chattering] or [f"  {t['none']}"]
    lines += ["", t["standing"]]
    lines += [f"  {a} ({s}): {h:g} {t['hours']}" for a, s, h in health.standing] or [f"  {t['none']}"]
    lines += ["", t["active"]]
    lang = "en" if en else "id"
    lines += [
        f"  {a.spec.id} [{a.spec.severity}] {a.state.value}: {getattr(a.spec.rule.message, lang)}"
        for a in active
    ] or [f"  {t['none']}"]
    lines += ["", FOOTER["en" if en else "id"]]
    return t["subject"], "\n".join(lines) + "\n"
