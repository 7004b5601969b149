"""Settings come from the environment or secret files; weak or missing secrets are refused, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import Settings, SettingsError


def test_missing_and_weak_secrets_are_all_reported() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"BCC_PORTAL_SUBMISSIONS_PER_HOUR": "0"})
    assert "SECRET_KEY" in str(err.value) and "SUBMISSIONS_PER_HOUR" in str(err.value)
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.from_env({"BCC_PORTAL_SECRET_KEY": "changethis"})


def test_secrets_from_files_and_mqtt_from_env(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 40 + "\n")
    (tmp_path / "api").write_text("one-key-0123456789,two-key-0123456789")
    settings = Settings.from_env(
        {
            "BCC_PORTAL_SECRET_KEY_FILE": str(tmp_path / "key"),
            "BCC_PORTAL_OPEN311_API_KEYS_FILE": str(tmp_path / "api"),
            "BCC_PORTAL_MQTT_HOST": "127.0.0.1",
            "BCC_PORTAL_MQTT_PORT": "1884",
            "BCC_MQTT_PASSWORD_PORTAL": "p" * 16,
            "BCC_PORTAL_DATABASE_URL": "postgresql://bcc@db/bcc",
        }
    )
    assert settings.secret_key.get_secret_value() == "k" * 40
    assert [k.get_secret_value() for k in settings.open311_api_keys] == [
        "one-key-0123456789",
        "two-key-0123456789",
    ]
    assert settings.mqtt is not None and settings.mqtt.port == 1884 and settings.mqtt.username == "portal"
    assert settings.cookie_secure is True  # secure unless turned off explicitly
    assert settings.max_body_bytes == 3 * 5 * 1024 * 1024 + 256 * 1024


def test_mqtt_password_and_accounts_from_files_and_env(tmp_path: Path) -> None:
    (tmp_path / "mqtt").write_text("m" * 20 + "\n")
    base = {"BCC_PORTAL_SECRET_KEY": "k" * 40, "BCC_PORTAL_MQTT_HOST": "127.0.0.1"}
    settings = Settings.from_env(
        {**base, "BCC_MQTT_PASSWORD_PORTAL_FILE": str(tmp_path / "mqtt"), "BCC_PORTAL_MQTT_ACCOUNTS": "4"}
    )
    assert settings.mqtt is not None
    assert settings.mqtt.password.get_secret_value() == "m" * 20 and settings.mqtt.accounts == 4
    with pytest.raises(SettingsError) as err:
        Settings.from_env(
            {
                **base,
                "BCC_MQTT_PASSWORD_PORTAL_FILE": str(tmp_path / "missing"),
                "BCC_PORTAL_MQTT_ACCOUNTS": "0",
            }
        )
    assert "BCC_MQTT_PASSWORD_PORTAL_FILE" in str(err.value)
