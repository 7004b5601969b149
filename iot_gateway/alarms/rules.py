"""Alarm rules as data: a YAML file per site (``devices/sites/alarms/<site>.yaml`` by default), validated
as a whole against the site and its profiles before the service opens a socket (docs/alarms.md).

Every problem is listed at once, as the site loader does: an unknown device or point, a point of the
wrong kind, a limit outside the point's ``minimum``/``maximum``, a low limit whose clearing band reaches
a high limit of the same point, an unknown severity or kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bcc_common.ident import Ident
from bcc_contract.alarms import SEVERITIES
from devices.loader import SITE_DIR, ConfigError, LoadedSite, format_validation
from devices.models import Label

RULES_DIR = SITE_DIR / "alarms"
Severity = Literal["critical", "high", "medium", "low"]
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
Kind = Literal[
    "high",
    "low",
    "state",
    "stale",
    "offline",
    "gateway_offline",
    "alarm_system",
    "reports_overdue",
    "recorder_offline",
    "influxdb_unreachable",
]
ALL_DEVICES = "*"
# The subject of a gateway_offline alarm (its alarm id is ``<rule>.bridge``) and of an alarm_system one.
BRIDGE = "bridge"
EVALUATOR = "evaluator"
# The subject of a reports_overdue alarm: the portal's report backlog (``<base>/reports/backlog``).
REPORTS = "reports"
# The subject of recorder_offline and influxdb_unreachable alarms: the recorders' retained status
# (``<base>/recorder/status/<instance>``), any of them.
RECORDER = "recorder"
# Rules about the room's infrastructure or the citizen side rather than devices: no ``devices``, no
# ``point``.
SYSTEM_KINDS = (
    "gateway_offline",
    "alarm_system",
    "reports_overdue",
    "recorder_offline",
    "influxdb_unreachable",
)
# Rules with a number to pass: ``limit`` (and ``deadband``) apply.
NUMERIC_KINDS = ("high", "low", "reports_overdue")
# Who gets an alarm's e-mail (docs/alarms.md, "Notifications"): the on-duty operators of the roster, or
# every active portal account of a role, each with an e-mail address.
Audience = Literal["on_duty", "operator", "admin"]
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class Rule(BaseModel):
    """One rule; it becomes one alarm per device it names (``<rule id>.<device>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Ident
    kind: Kind
    severity: Severity
    message: Label
    # Devices the rule watches; "*" is every device of the site (offline and stale rules).
    devices: tuple[Ident, ...] | Literal["*"] = ()
    point: Ident | None = None
    # high / low: raised when the value passes the limit, cleared once it is back by the deadband;
    # reports_overdue: raised when more than ``limit`` reports are past their ``deadline``.
    limit: float | None = None
    deadline: Literal["verification", "response"] | None = None
    deadband: Annotated[float, Field(ge=0)] = 0.0
    # state: raised while the boolean point has this value.
    value: Literal["ON", "OFF"] | None = None
    # stale: raised when the device (or the point) has sent no state for this many seconds;
    # alarm_system: raised when the evaluator comes back after losing the broker for this many seconds.
    after_s: Annotated[float, Field(gt=0, le=86400)] | None = None
    # The condition must hold this long before the alarm is raised, and be gone this long before it clears.
    on_delay_s: Annotated[float, Field(ge=0, le=86400)] = 0.0
    off_delay_s: Annotated[float, Field(ge=0, le=86400)] = 0.0
    # Who is e-mailed when it is raised (default: the file's ``notify`` for its severity; [] is nobody),
    # and for a critical rule after how long unacknowledged the roster's next person is told.
    notify: tuple[Audience, ...] | None = None
    escalate_after_s: Annotated[float, Field(ge=60, le=86400)] | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Rule:
        problems: list[str] = []
        if self.escalate_after_s is not None and self.severity != "critical":
            problems.append("'escalate_after_s' applies to critical rules only")
        numeric = self.kind in NUMERIC_KINDS
        if numeric and self.limit is None:
            problems.append(f"a {self.kind} rule needs 'limit'")
        if not numeric and (self.limit is not None or self.deadband):
            problems.append(
                f"'limit' and 'deadband' apply to high/low rules and reports_overdue, not {self.kind}"
            )
        if (self.kind == "reports_overdue") != (self.deadline is not None):
            problems.append("'deadline' (verification or response) is required by reports_overdue rules only")
        if self.kind == "reports_overdue" and self.limit is not None and self.limit < 0:
            problems.append("a reports_overdue 'limit' is a number of reports (0 or more)")
        if (self.kind == "state") != (self.value is not None):
            problems.append("'value' (ON or OFF) is required by state rules and only allowed there")
        if (self.kind in ("stale", "alarm_system")) != (self.after_s is not None):
            problems.append("'after_s' is required by stale and alarm_system rules and only allowed there")
        if self.kind in ("high", "low", "state") and self.point is None:
            problems.append(f"a {self.kind} rule needs 'point'")
        if self.kind in ("offline", *SYSTEM_KINDS) and self.point is not None:
            problems.append(f"a {self.kind} rule has no 'point'")
        if self.kind == "alarm_system" and self.on_delay_s:
            problems.append(
                "an alarm_system rule has no 'on_delay_s' ('after_s' is how long the broker was lost)"
            )
        if self.kind in SYSTEM_KINDS and self.devices:
            problems.append(f"a {self.kind} rule watches the {_SUBJECT[self.kind]}: no 'devices'")
        if self.kind not in SYSTEM_KINDS and not self.devices:
            problems.append("'devices' must name at least one device (or be '*')")
        if problems:
            raise ValueError("; ".join(problems))
        return self


_SUBJECT = {
    "gateway_offline": "gateway",
    "alarm_system": "evaluator itself",
    "reports_overdue": "report backlog",
    "recorder_offline": "recorders",
    "influxdb_unreachable": "recorders",
}


class NotifyPolicy(BaseModel):
    """The file's ``notify`` section: who is e-mailed for a new alarm of each severity, when an
    unacknowledged critical alarm escalates, and when the daily summary goes out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    critical: tuple[Audience, ...] = ("on_duty", "admin")
    high: tuple[Audience, ...] = ("on_duty",)
    medium: tuple[Audience, ...] = ()
    low: tuple[Audience, ...] = ()
    # A critical alarm still unacknowledged after this long is sent to the roster's next person (and
    # after twice as long to the one after, ...).
    escalate_after_s: Annotated[float, Field(ge=60, le=86400)] = 600.0
    # The daily summary: at this time of day in WIB (UTC+7), to these people ([] turns it off).
    daily_summary_at: Annotated[str, Field(pattern=HHMM)] = "07:00"
    daily_summary_to: tuple[Audience, ...] = ("on_duty",)
    # New alarms of these severities, and escalations, also go by SMS to the recipients with a phone
    # number (``bcc admin set-contact --phone``), through the portal's SMS provider.
    sms: tuple[Severity, ...] = ("critical",)

    def audience(self, severity: str) -> tuple[str, ...]:
        found: tuple[str, ...] = getattr(self, severity)
        return found


class RuleBook(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: Ident
    # Longest shelving an operator may ask for (ISA-18.2: shelving is always time-limited).
    max_shelve_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 8 * 3600.0
    notify: NotifyPolicy = NotifyPolicy()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: a rule applied to one device (or to the gateway)."""

    id: str
    rule: Rule
    device: str  # BRIDGE for gateway_offline

    @property
    def severity(self) -> str:
        return self.rule.severity

    def audience(self, policy: NotifyPolicy) -> tuple[str, ...]:
        """Who is e-mailed when this alarm is raised."""
        return self.rule.notify if self.rule.notify is not None else policy.audience(self.severity)

    def escalate_after_s(self, policy: NotifyPolicy) -> float | None:
        """After how long unacknowledged the alarm escalates (critical alarms only)."""
        if self.severity != "critical":
            return None
        return self.rule.escalate_after_s or policy.escalate_after_s


@dataclass(frozen=True)
class LoadedRules:
    book: RuleBook
    alarms: tuple[AlarmSpec, ...]
    path: Path | None = None

    def alarm(self, alarm_id: str) -> AlarmSpec:
        for spec in self.alarms:
            if spec.id == alarm_id:
                return spec
        raise KeyError(alarm_id)


def rules_path_for(loaded: LoadedSite) -> Path:
    """The default rules file of a site: ``devices/sites/alarms/<site>.yaml``."""
    return RULES_DIR / f"{loaded.site.site}.yaml"


def _devices_of(rule: Rule, loaded: LoadedSite) -> tuple[str, ...]:
    if rule.kind == "gateway_offline":
        return (BRIDGE,)
    if rule.kind == "alarm_system":
        return (EVALUATOR,)
    if rule.kind == "reports_overdue":
        return (REPORTS,)
    if rule.kind in ("recorder_offline", "influxdb_unreachable"):
        return (RECORDER,)
    if rule.devices == ALL_DEVICES:
        return tuple(d.id for d in loaded.site.devices)
    return tuple(rule.devices)


def check_rule(rule: Rule, loaded: LoadedSite, where: str) -> list[str]:
    """Problems of one rule against the site: devices, points and limits."""
    problems: list[str] = []
    tag = f"{where}: rule {rule.id}"
    known = {d.id for d in loaded.site.devices}
    for device in _devices_of(rule, loaded):
        if rule.kind in SYSTEM_KINDS:
            continue
        if device not in known:
            problems.append(f"{tag}: unknown device {device!r} (known: {', '.join(sorted(known))})")
            continue
        if rule.point is None:
            continue
        profile = loaded.profile_of(loaded.site.device(device))
        try:
            point = profile.point(rule.point)
        except KeyError:
            problems.append(f"{tag}: device {device} ({profile.model}) has no point {rule.point!r}")
            continue
        if rule.kind in ("high", "low") and not point.is_numeric:
            problems.append(f"{tag}: point {device}.{point.key} is not a number; use a state rule")
        if rule.kind == "state" and not point.is_bool:
            problems.append(f"{tag}: point {device}.{point.key} is not ON/OFF; use a high or low rule")
        if rule.limit is not None and point.is_numeric:
            low, high = point.minimum, point.maximum
            if (low is not None and rule.limit < low) or (high is not None and rule.limit > high):
                span = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
                problems.append(
                    f"{tag}: limit {rule.limit:g} is outside the range of {device}.{point.key} "
                    f"({span} {point.unit})"
                )
    return problems


def check_overlaps(rules: Iterable[Rule], loaded: LoadedSite, where: str) -> list[str]:
    """A low limit plus its deadband must stay below every high limit minus its deadband on the same
    point: otherwise one value could hold both alarms, or clear one by raising the other."""
    problems: list[str] = []
    limits: dict[tuple[str, str], list[Rule]] = {}
    for rule in rules:
        if rule.kind in ("high", "low") and rule.point is not None:
            for device in _devices_of(rule, loaded):
                limits.setdefault((device, rule.point), []).append(rule)
    for (device, point), found in sorted(limits.items()):
        for lo in (r for r in found if r.kind == "low"):
            for hi in (r for r in found if r.kind == "high"):
                assert lo.limit is not None and hi.limit is not None
                if lo.limit + lo.deadband >= hi.limit - hi.deadband:
                    problems.append(
                        f"{where}: rules {lo.id} (low {lo.limit:g} + deadband {lo.deadband:g}) and "
                        f"{hi.id} (high {hi.limit:g} - deadband {hi.deadband:g}) overlap on {device}.{point}"
                    )
    return problems


def parse_rules(raw: Any, loaded: LoadedSite, where: str) -> LoadedRules:
    """Validate a rules document (already parsed YAML) against ``loaded``; ConfigError lists everything."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: expected a mapping with 'site' and 'rules'"])
    items = raw.get("rules") or []
    if not isinstance(items, list):
        raise ConfigError([f"{where}: rules: expected a list"])
    rules: list[Rule] = []
    # Each rule on its own, so one bad rule does not hide the problems of the others.
    for n, item in enumerate(items):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as err:
            problems += format_validation(where, item, err, prefix=f"rules.{_name(item, n)}: ")
    book: RuleBook | None = None
    try:
        book = RuleBook.model_validate({**raw, "rules": []})
    except ValidationError as err:
        problems += format_validation(where, raw, err)
    if book is not None and book.site != loaded.site.site:
        problems.append(f"{where}: site {book.site!r} does not match the site file's {loaded.site.site!r}")
    ids = [r.id for r in rules]
    problems += [
        f"{where}: rule {i}: id used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    for rule in rules:
        problems += check_rule(rule, loaded, where)
    problems += check_overlaps(rules, loaded, where)
    if problems or book is None:
        raise ConfigError(problems)
    book = book.model_copy(update={"rules": tuple(rules)})
    specs = tuple(AlarmSpec(f"{r.id}.{d}", r, d) for r in rules for d in _devices_of(r, loaded))
    return LoadedRules(book, specs)


def _name(item: Any, n: int) -> str:
    return str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"#{n + 1}"


def load_rules(path: Path | str, loaded: LoadedSite) -> LoadedRules:
    """Read and validate a rules file for ``loaded``; ConfigError lists every problem found."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not valid YAML: {err}"]) from err
    found = parse_rules(raw, loaded, str(path))
    return LoadedRules(found.book, found.alarms, path)
