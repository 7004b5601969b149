"""``bcc alarms`` configuration: the site file, its rules file, the state file, and MQTT secrets from the
environment (the same variables as the gateway's; the username defaults to the ``alarms`` role)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devices.loader import PROFILE_DIR, ConfigError, LoadedSite, load_site
from devices.site import MqttSettings
from iot_gateway.alarms.rules import LoadedRules, load_rules, rules_path_for
from iot_gateway.config import resolve_mqtt

ROLE = "alarms"
DEFAULT_STATE = Path("alarms-state.sqlite3")


@dataclass(frozen=True)
class AlarmsConfig:
    loaded: LoadedSite
    rules: LoadedRules
    mqtt: MqttSettings
    password: str | None
    state_path: Path = DEFAULT_STATE
    # How often delays, stale values and shelving expiry are judged.
    tick_s: float = 0.25

    @property
    def client_id(self) -> str:
        return f"bcc-alarms-{self.loaded.site.site}"


def build_alarms_config(
    loaded: LoadedSite,
    env: Mapping[str, str],
    rules_path: Path | None = None,
    state_path: Path = DEFAULT_STATE,
    where: str = "<site>",
) -> AlarmsConfig:
    """Rules and secrets for an already loaded site; ConfigError lists every problem."""
    problems: list[str] = []
    rules: LoadedRules | None = None
    try:
        rules = load_rules(rules_path or rules_path_for(loaded), loaded)
    except ConfigError as err:
        problems += err.problems
    mqtt_in = loaded.site.mqtt.model_copy(update={"username": ROLE, "password_file": None})
    mqtt, password, more = resolve_mqtt(mqtt_in, env, where)
    problems += more
    if problems or rules is None:
        raise ConfigError(problems)
    return AlarmsConfig(loaded, rules, mqtt, password, state_path)


def load_alarms_config(
    site_path: Path | str,
    rules_path: Path | None = None,
    state_path: Path = DEFAULT_STATE,
    env: Mapping[str, str] | None = None,
    profile_dirs: Iterable[Path] = (PROFILE_DIR,),
) -> AlarmsConfig:
    env = os.environ if env is None else env
    loaded = load_site(site_path, profile_dirs)
    return build_alarms_config(loaded, env, rules_path, state_path, str(site_path))
