"""Recorder configuration: the site file's ``influxdb:`` section, MQTT settings and secrets from env.

Environment (docs/configuration.md): ``BCC_INFLUX_URL``, ``BCC_INFLUX_TOKEN`` / ``BCC_INFLUX_TOKEN_FILE``,
``BCC_INFLUX_PASSWORD`` / ``BCC_INFLUX_PASSWORD_FILE``, and the MQTT variables the gateway also reads
(``BCC_MQTT_URL``, ``BCC_MQTT_USERNAME``, ``BCC_MQTT_PASSWORD``, ``BCC_MQTT_PASSWORD_FILE``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bcc_common.secrets import SecretFileError, read_secret
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
_DURATION = re.compile(r"^(INF|\d+[mhdw])$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


class InfluxSettings(BaseModel):
    """The ``influxdb:`` section of a site file (every key documented in docs/configuration.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "http://127.0.0.1:8086"
    # "1": InfluxDB 1.x (database, retention policies and continuous queries are created on start);
    # "2"/"3": the v1-compatible API of 2.x / 3 Core; the bucket/database must exist (docs/influxdb.md).
    version: Literal["1", "2", "3"] = "1"
    database: Annotated[str, Field(pattern=_NAME.pattern)] = "bcc"
    auth: Literal["none", "basic", "token"] = "none"
    username: str | None = None
    password_file: str | None = None
    token_file: str | None = None
    # Retention (1.x): raw points kept this long in RP "raw", 5-minute means in "rollup",
    # citizen-report history in "reports".
    raw_retention: Annotated[str, Field(pattern=_DURATION.pattern)] = "90d"
    rollup_retention: Annotated[str, Field(pattern=_DURATION.pattern)] = "730d"
    reports_retention: Annotated[str, Field(pattern=_DURATION.pattern)] = "INF"
    rollup_interval: Annotated[str, Field(pattern=r"^\d+[mh]$")] = "5m"
    manage_schema: bool = True
    # Batching and retries.
    batch_points: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 1000
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    backoff_min_s: Annotated[float, Field(gt=0)] = 0.2
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0
    # Spool: SQLite in WAL mode. "normal" survives a killed process; "full" also a power cut (fsync).
    spool_path: str = "recorder-spool.sqlite3"
    spool_max_points: Annotated[int, Field(ge=100)] = 5_000_000
    spool_sync: Literal["normal", "full"] = "normal"
    # MQTT side.
    mqtt_username: str = "recorder"
    client_id: str | None = None
    shared_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")] | None = None
    session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 86400
    # MQTT 5 Receive Maximum in CONNECT (None: not sent; Mosquitto then uses max_inflight_messages, 100).
    # Measured in `bcc bench recorder`: 20 and 1000 give the same throughput (docs/performance.md).
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] | None = None
    stats_interval_s: Annotated[float, Field(gt=0)] = 10.0
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL {url!r}: must be http(s)://host[:port]")
        return url.rstrip("/")


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


def build_config(loaded: LoadedSite, env: Mapping[str, str], where: str = "<site>") -> RecorderConfig:
    """Validate the ``influxdb:`` section of ``loaded`` with secrets from ``env``; ConfigError lists all."""
    problems: list[str] = []
    raw = dict(loaded.site.influxdb or {})
    if env.get("BCC_INFLUX_URL"):
        raw["url"] = env["BCC_INFLUX_URL"]
    try:
        influx = InfluxSettings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation(where, raw, err, prefix="influxdb.")) from err
    clash = sorted(RESERVED_MEASUREMENTS & set(loaded.profiles))
    if clash:
        problems.append(f"{where}: profiles {clash} clash with recorder measurements")
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
    mqtt_in = loaded.site.mqtt.model_copy(update={"username": influx.mqtt_username, "password_file": None})
    mqtt, mqtt_password, more = resolve_mqtt(mqtt_in, env, where)
    problems += more
    if problems:
        raise ConfigError(problems)
    return RecorderConfig(loaded, mqtt, mqtt_password, influx, password, token)


def load_recorder_config(
    path: Path | str, env: Mapping[str, str] | None = None, profile_dirs: Iterable[Path] = (PROFILE_DIR,)
) -> RecorderConfig:
    """Load and validate the site file for the recorder; ConfigError lists every problem found."""
    env = os.environ if env is None else env
    loaded = load_site(path, profile_dirs)
    return build_config(loaded, env, str(path))
