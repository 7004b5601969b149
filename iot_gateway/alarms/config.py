"""``bcc alarms`` configuration: the site file, its rules file, where the state lives, and MQTT secrets
from the environment (the same variables as the gateway's; the username is the ``alarms`` role).

State: the portal's database when ``BCC_ALARMS_DATABASE_URL`` (or ``BCC_ALARMS_DATABASE_URL_FILE``) is
set, which it must be for a standby evaluator; else a SQLite file of its own (``--state``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bcc_common.ident import IDENT_RE
from bcc_common.secrets import SecretFileError, read_secret
from devices.loader import PROFILE_DIR, ConfigError, LoadedSite, load_site
from devices.site import MqttSettings
from iot_gateway.alarms.notify import load_roster
from iot_gateway.alarms.rules import LoadedRules, load_rules, rules_path_for
from iot_gateway.alarms.store import sqlite_url
from iot_gateway.config import resolve_mqtt

ROLE = "alarms"
DEFAULT_STATE = Path("alarms-state.sqlite3")
DATABASE_VAR = "BCC_ALARMS_DATABASE_URL"


def default_instance() -> str:
    """This evaluator's name: its host and process, so that a standby on the same host differs."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname().lower())[:30] or "host"
    return f"{host}_{os.getpid()}"


@dataclass(frozen=True)
class AlarmsConfig:
    loaded: LoadedSite
    rules: LoadedRules
    mqtt: MqttSettings
    password: str | None
    database_url: str
    own_database: bool  # a state file of our own: create its tables
    instance: str
    # How often delays, stale values and shelving expiry are judged.
    tick_s: float = 0.25
    # The active evaluator renews its lease every lease_s / 3; a standby takes over once it expired.
    lease_s: float = 10.0
    # The on-duty roster for alarm e-mails (docs/alarms.md, "Notifications"); None: by role.
    roster: Path | None = None
    # Prometheus /metrics and /healthz on this port of metrics_host (0: none).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"

    @property
    def client_id(self) -> str:
        return f"bcc-alarms-{self.loaded.site.site}-{self.instance}"


def build_alarms_config(
    loaded: LoadedSite,
    env: Mapping[str, str],
    rules_path: Path | None = None,
    state_path: Path | None = None,
    where: str = "<site>",
    instance: str | None = None,
    lease_s: float = 10.0,
    roster: Path | None = None,
) -> AlarmsConfig:
    """Rules, state and secrets for an already loaded site; ConfigError lists every problem."""
    problems: list[str] = []
    if roster is not None:
        try:
            load_roster(roster)
        except ConfigError as err:
            problems += err.problems
    rules: LoadedRules | None = None
    try:
        rules = load_rules(rules_path or rules_path_for(loaded), loaded)
    except ConfigError as err:
        problems += err.problems
    mqtt_in = loaded.site.mqtt.model_copy(update={"username": ROLE, "password_file": None})
    mqtt, password, more = resolve_mqtt(mqtt_in, env, where)
    problems += more
    try:
        database = read_secret(env, DATABASE_VAR)
    except SecretFileError as err:
        problems.append(f"{DATABASE_VAR}: {err}")
        database = None
    if database is not None and state_path is not None:
        problems.append(f"--state and {DATABASE_VAR} both given: the state lives in one place")
    if database is not None and not database.startswith(("sqlite:///", "postgresql")):
        problems.append(
            f"{DATABASE_VAR}: expected sqlite:///PATH or postgresql://... (the portal's database)"
        )
    instance = instance or default_instance()
    if not IDENT_RE.match(instance):
        problems.append(
            f"instance {instance!r}: lower-case letters, digits and _ (at most 48), a letter first"
        )
    if not lease_s > 0:
        problems.append("the lease must last more than 0 s")
    if problems or rules is None:
        raise ConfigError(problems)
    url = database or sqlite_url(state_path or DEFAULT_STATE)
    return AlarmsConfig(
        loaded, rules, mqtt, password, url, database is None, instance, lease_s=lease_s, roster=roster
    )


def load_alarms_config(
    site_path: Path | str,
    rules_path: Path | None = None,
    state_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    profile_dirs: Iterable[Path] = (PROFILE_DIR,),
    instance: str | None = None,
    roster: Path | None = None,
) -> AlarmsConfig:
    env = os.environ if env is None else env
    loaded = load_site(site_path, profile_dirs)
    return build_alarms_config(loaded, env, rules_path, state_path, str(site_path), instance, roster=roster)
