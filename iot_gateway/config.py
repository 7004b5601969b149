"""Gateway configuration: the site file plus secrets from the environment, checked before any socket.

Environment overrides (docs/configuration.md): ``BCC_MQTT_URL``, ``BCC_MQTT_USERNAME``,
``BCC_MQTT_PASSWORD`` (or ``BCC_MQTT_PASSWORD_FILE``). The password never lives in the site file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bcc_common.secrets import SecretFileError, read_secret
from devices.loader import PROFILE_DIR, ConfigError, LoadedSite, format_validation, load_site
from devices.site import MqttSettings


@dataclass(frozen=True)
class GatewayConfig:
    loaded: LoadedSite
    mqtt: MqttSettings
    password: str | None


def resolve_mqtt(
    settings: MqttSettings, env: Mapping[str, str], where: str
) -> tuple[MqttSettings, str | None, list[str]]:
    """Apply environment overrides and read the password. Returns (settings, password, problems)."""
    problems: list[str] = []
    update: dict[str, object] = {}
    if env.get("BCC_MQTT_URL"):
        update["url"] = env["BCC_MQTT_URL"]
    if env.get("BCC_MQTT_USERNAME"):
        update["username"] = env["BCC_MQTT_USERNAME"]
    if update:
        try:
            settings = MqttSettings.model_validate({**settings.model_dump(), **update})
        except ValidationError as err:
            problems += format_validation("environment", update, err, prefix="BCC_MQTT_*: ")
    try:
        password = read_secret(env, "BCC_MQTT_PASSWORD", settings.password_file)
    except SecretFileError as err:
        password = None
        problems.append(f"{where}: mqtt.password_file: {err}")
    if settings.username and password is None and not problems:
        problems.append(
            f"{where}: mqtt.username {settings.username!r} has no password: "
            "set BCC_MQTT_PASSWORD or BCC_MQTT_PASSWORD_FILE (or mqtt.password_file)"
        )
    tls = settings.tls
    if tls is not None:
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(tls, key)
            if path and not Path(path).is_file():
                problems.append(f"{where}: mqtt.tls.{key}: no such file {path}")
    return settings, password, problems


def load_gateway_config(
    path: Path | str, env: Mapping[str, str] | None = None, profile_dirs: Iterable[Path] = (PROFILE_DIR,)
) -> GatewayConfig:
    """Everything the gateway needs, validated; ConfigError lists every problem found."""
    env = os.environ if env is None else env
    problems: list[str] = []
    try:
        loaded = load_site(path, profile_dirs)
    except ConfigError as err:
        problems += err.problems
        loaded = None
    if loaded is None:
        raise ConfigError(problems)
    mqtt, password, more = resolve_mqtt(loaded.site.mqtt, env, str(path))
    problems += more
    if problems:
        raise ConfigError(problems)
    return GatewayConfig(loaded=loaded, mqtt=mqtt, password=password)
