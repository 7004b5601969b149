"""Recorder configuration: the site file's ``influxdb:`` section, MQTT settings and secrets from env.

Environment (docs/configuration.md): ``BCC_INFLUX_URL``, ``BCC_INFLUX_TOKEN`` / ``BCC_INFLUX_TOKEN_FILE``,
``BCC_INFLUX_PASSWORD`` / ``BCC_INFLUX_PASSWORD_FILE``, and the MQTT variables the gateway also reads
(``BCC_MQTT_URL``, ``BCC_MQTT_USERNAME``, ``BCC_MQTT_PASSWORD``, ``BCC_MQTT_PASSWORD_FILE``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bcc_common.secrets import SecretFileError, read_secret
from devices.influxdb import InfluxSettings as InfluxSettings  # the recorder's modules import it from here
from devices.loader import PROFILE_DIR, ConfigError, LoadedSite, format_validation, load_site
from devices.site import MqttSettings
from iot_gateway.config import resolve_mqtt

# Measurements the recorder writes besides one per device profile (docs/influxdb.md).
RESERVED_MEASUREMENTS = frozenset(
    {
        "availability",
        "gateway_health",
        "command_response",
        "report_event",
        "report_backlog",
        "report_backlog_category",
        "report_overdue",
        "recorder",
    }
)


@dataclass(frozen=True)
class RecorderConfig:
    loaded: LoadedSite
    mqtt: MqttSettings
    mqtt_password: str | None
    influx: InfluxSettings
    influx_password: str | None = None
    influx_token: str | None = None

    @property
    def client_id(self) -> str:
        return self.influx.client_id or f"bcc-recorder-{self.loaded.site.site}"


def _secret(
    env: Mapping[str, str], var: str, file_key: str | None, where: str, problems: list[str]
) -> str | None:
    try:
        return read_secret(env, var, file_key)
    except SecretFileError as err:
        problems.append(f"{where}: {err}")
        return None


@dataclass(frozen=True)
class InfluxAccess:
    """Where and as whom the recorder reaches InfluxDB (also what ``bcc backup``/``restore`` use)."""

    settings: InfluxSettings
    password: str | None = None
    token: str | None = None


def resolve_influx(
    loaded: LoadedSite, env: Mapping[str, str], where: str, problems: list[str]
) -> InfluxAccess:
    """The ``influxdb:`` section of ``loaded`` with ``BCC_INFLUX_URL`` and the secrets from ``env``;
    problems are appended to ``problems`` (a bad URL override raises ConfigError at once)."""
    influx = loaded.site.influxdb or InfluxSettings()
    if env.get("BCC_INFLUX_URL"):
        # The override is validated like the file's value (same model, same messages).
        raw = {**influx.model_dump(exclude_unset=True), "url": env["BCC_INFLUX_URL"]}
        try:
            influx = InfluxSettings.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(format_validation(where, raw, err, prefix="influxdb.")) from err
    if influx.backoff_min_s > influx.backoff_max_s:
        problems.append(f"{where}: influxdb.backoff_min_s exceeds backoff_max_s")
    password = token = None
    if influx.auth == "basic":
        password = _secret(env, "BCC_INFLUX_PASSWORD", influx.password_file, where, problems)
        if not influx.username or password is None:
            problems.append(f"{where}: influxdb.auth basic needs username and BCC_INFLUX_PASSWORD(_FILE)")
    elif influx.auth == "token":
        token = _secret(env, "BCC_INFLUX_TOKEN", influx.token_file, where, problems)
        if token is None:
            problems.append(f"{where}: influxdb.auth token needs BCC_INFLUX_TOKEN or influxdb.token_file")
    return InfluxAccess(influx, password, token)


def build_config(loaded: LoadedSite, env: Mapping[str, str], where: str = "<site>") -> RecorderConfig:
    """Check the (already typed) ``influxdb:`` section of ``loaded`` with secrets and overrides from
    ``env``; ConfigError lists every problem."""
    problems: list[str] = []
    clash = sorted(RESERVED_MEASUREMENTS & set(loaded.profiles))
    if clash:
        problems.append(f"{where}: profiles {clash} clash with recorder measurements")
    access = resolve_influx(loaded, env, where, problems)
    influx = access.settings
    mqtt_in = loaded.site.mqtt.model_copy(update={"username": influx.mqtt_username, "password_file": None})
    mqtt, mqtt_password, more = resolve_mqtt(mqtt_in, env, where)
    problems += more
    if problems:
        raise ConfigError(problems)
    return RecorderConfig(loaded, mqtt, mqtt_password, influx, access.password, access.token)


def load_recorder_config(
    path: Path | str, env: Mapping[str, str] | None = None, profile_dirs: Iterable[Path] = (PROFILE_DIR,)
) -> RecorderConfig:
    """Load and validate the site file for the recorder; ConfigError lists every problem found."""
    env = os.environ if env is None else env
    loaded = load_site(path, profile_dirs)
    return build_config(loaded, env, str(path))
