"""Portal settings: one frozen model read from the environment (and secret files), validated at start-up.

Every variable is ``BCC_PORTAL_<NAME>``; a secret may instead come from ``BCC_PORTAL_<NAME>_FILE``.
There is no default secret key: a missing, short or placeholder key is refused (like the FastAPI
template's settings). The table of variables is in docs/configuration.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bcc_common.secrets import SecretFileError, read_secret
from bcc_contract.accounts import DEFAULT_ACCOUNTS, MAX_ACCOUNTS
from devices.loader import DEMO_SITE

DEFAULT_DB_URL = "sqlite:///var/portal/portal.db"
# The room the operator console shows (devices and their profiles; ports do not matter to the portal).
DEFAULT_SITE_FILE = DEMO_SITE
_PLACEHOLDERS = {"changethis", "secret", "changeme", "password"}


class SettingsError(Exception):
    """The environment does not give a usable configuration; the message names every problem."""


class PortalMqttSettings(BaseModel):
    """Broker connection of the ``portal`` role (docs/mqtt.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = "portal"
    password: SecretStr
    # Broker accounts of the role (portal_1 .. portal_N, one per running worker; bcc_contract/accounts.py).
    # Must match the broker's password file and ACL (`bcc broker passwd --accounts portal=N`).
    accounts: int = Field(default=DEFAULT_ACCOUNTS["portal"], ge=1, le=MAX_ACCOUNTS)
    base_topic: str = "bcc"
    # "3.1.1" only for brokers without MQTT 5 (the demo's amqtt fallback); nothing here needs 5's features.
    protocol: Literal["3.1.1", "5"] = "5"
    backlog_interval_s: float = Field(default=60.0, gt=0)
    # The console marks a command ``timeout`` when the gateway has not answered within this time
    # (the gateway itself answers every command within its command_deadline_ms, 2 s by default).
    command_response_s: float = Field(default=5.0, gt=0)


class Settings(BaseModel):
    """Everything the portal needs to run; build with :func:`Settings.from_env` or directly in tests."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    database_url: str = DEFAULT_DB_URL
    secret_key: SecretStr
    media_dir: Path = Path("var/portal/media")
    cookie_secure: bool = True
    max_photos: int = Field(default=3, ge=0, le=10)
    max_photo_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    submissions_per_hour: int = Field(default=10, ge=1)
    # every other public write (reporter actions, "check similar", Open311 POST), per client address
    public_writes_per_hour: int = Field(default=60, ge=1)
    # reports stored before reporter keys: a browser whose "Laporan saya" cookie lists the code may
    # claim the key once (docs/security.md, "Reporter secret and confidential reports"); turn off once
    # the transition is over
    legacy_reporter_claims: bool = True
    open311_api_keys: tuple[SecretStr, ...] = ()
    jurisdiction_id: str = "binjaikota.go.id"
    public_url: str = "http://127.0.0.1:8000"
    trust_forwarded_for: bool = False
    session_hours: float = Field(default=8.0, gt=0)
    # Failed logins (password or second factor) per account in 15 minutes, besides the per-address limit.
    account_login_attempts: int = Field(default=10, ge=1)
    # Reporters' contact details are erased this many days after their report closed (UU PDP 27/2022);
    # every worker checks every ``erase_check_s`` and one of them runs the day's erasure.
    erase_contact_days: int = Field(default=365, ge=1)
    erase_check_s: float = Field(default=3600.0, gt=0)
    mqtt: PortalMqttSettings | None = None
    site_file: Path = DEFAULT_SITE_FILE
    # Scenes and schedules of the console (data, see the file); schedules are checked every
    # ``schedule_check_s`` and a due time is run only if the check comes within ``schedule_grace_s``.
    scenes_file: Path = Path(__file__).resolve().parent / "data" / "scenes.yaml"
    schedule_check_s: float = Field(default=15.0, gt=0)
    schedule_grace_s: float = Field(default=300.0, gt=0)
    # Development proposals (usulan pembangunan): an estimated cost or an amount funded above this many
    # rupiah is refused as a typing error (portal/services/proposals.py); the city's whole APBD is ~1.3 T.
    proposal_cost_ceiling: int = Field(default=50_000_000_000, gt=0)
    # The planning cycle's calendar (which month each stage happens): data, not code.
    planning_cycle_file: Path = Path(__file__).resolve().parent / "data" / "planning_cycle.yaml"
    # Agencies answer for deadlines (portal/services/agency.py; with e-mail only): every worker checks
    # every ``agency_check_s`` for passed deadlines (the heads' escalations) and, from ``agency_digest_at``
    # (HH:MM, WIB), for the day's digest to the officers.
    agency_digest_at: str = Field(default="07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    agency_check_s: float = Field(default=60.0, gt=0)

    @field_validator("secret_key")
    @classmethod
    def _strong_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if len(raw) < 32 or raw.lower() in _PLACEHOLDERS:
            raise ValueError("must be at least 32 random characters (e.g. `openssl rand -hex 32`)")
        return value

    @property
    def max_body_bytes(self) -> int:
        """Request-body cap: every photo at its limit plus 256 KiB of text fields and multipart framing."""
        return self.max_photos * self.max_photo_bytes + 256 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``BCC_PORTAL_*`` (and ``BCC_MQTT_PASSWORD_PORTAL`` for the broker); report all problems."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def get(name: str, secret: bool = False) -> str | None:
            var = "BCC_PORTAL_" + name
            if not secret:
                return env.get(var) or None
            try:
                return read_secret(env, var)
            except SecretFileError as err:
                problems.append(str(err))
                return None

        data: dict[str, object] = {"secret_key": get("SECRET_KEY", secret=True) or ""}
        for name, key in [
            ("DATABASE_URL", "database_url"),
            ("MEDIA_DIR", "media_dir"),
            ("JURISDICTION_ID", "jurisdiction_id"),
            ("PUBLIC_URL", "public_url"),
            ("SUBMISSIONS_PER_HOUR", "submissions_per_hour"),
            ("PUBLIC_WRITES_PER_HOUR", "public_writes_per_hour"),
            ("LEGACY_REPORTER_CLAIMS", "legacy_reporter_claims"),
            ("COOKIE_SECURE", "cookie_secure"),
            ("TRUST_FORWARDED_FOR", "trust_forwarded_for"),
            ("SITE_FILE", "site_file"),
            ("SCENES_FILE", "scenes_file"),
            ("ACCOUNT_LOGIN_ATTEMPTS", "account_login_attempts"),
            ("ERASE_CONTACT_DAYS", "erase_contact_days"),
            ("PROPOSAL_COST_CEILING", "proposal_cost_ceiling"),
            ("PLANNING_CYCLE_FILE", "planning_cycle_file"),
            ("AGENCY_DIGEST_AT", "agency_digest_at"),
            ("AGENCY_CHECK_S", "agency_check_s"),
        ]:
            if (value := get(name)) is not None:
                data[key] = value
        if keys := get("OPEN311_API_KEYS", secret=True):
            data["open311_api_keys"] = tuple(k.strip() for k in keys.split(",") if k.strip())
        if host := get("MQTT_HOST"):
            try:
                password = read_secret(env, "BCC_MQTT_PASSWORD_PORTAL") or ""
            except SecretFileError as err:
                problems.append(str(err))
                password = ""
            mqtt: dict[str, object] = {"host": host, "password": password}
            if port := get("MQTT_PORT"):
                mqtt["port"] = port
            if accounts := get("MQTT_ACCOUNTS"):
                mqtt["accounts"] = accounts
            data["mqtt"] = mqtt
        try:
            settings = cls.model_validate(data)
        except ValidationError as err:
            for e in err.errors():
                loc = ".".join(str(p) for p in e["loc"]).upper()
                problems.append(f"BCC_PORTAL_{loc}: {e['msg']}")
            settings = None
        if problems or settings is None:
            raise SettingsError("portal settings: " + "; ".join(problems))
        return settings
