"""The installer's one settings file (YAML; deploy/settings.example.yaml): typed, every problem listed.

Only the shape is checked here. What needs the machine (files, certificates, the database) is checked
by bcc/install.py before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from bcc_contract.accounts import DEFAULT_ACCOUNTS, MAX_ACCOUNTS, ROLES

# Secret files in /etc/bcc/secrets: the names the units' LoadCredential= lines use (deploy/README.md).
MQTT_SECRETS: dict[str, str] = {role: f"mqtt-{role}" for role in ROLES}
SECRET_NAMES: tuple[str, ...] = (
    *MQTT_SECRETS.values(),
    "influx-recorder",
    "influx-grafana",  # Grafana's read-only InfluxDB user (bcc influx provision, docs/influxdb.md)
    "influx-admin",  # InfluxDB's admin bcc_admin, made by bcc-influx-provision@ on a server without users
    "portal-secret-key",
)
Service = Literal["broker", "nginx", "portal", "gateway", "recorder", "grafana"]
# The default; "grafana" (provisioning files for a Grafana installed from Grafana's own packages) is
# added by hand: Debian has no Grafana package.
SERVICES: tuple[Service, ...] = ("broker", "nginx", "portal", "gateway", "recorder")
MIN_SECRET_LEN = 16
MIN_DISTINCT = 8
# Words of example files and defaults: a secret containing one was copied, not chosen.
_PLACEHOLDERS = ("changeme", "changethis", "password", "secret", "example", "placeholder", "xxxx")
# systemd's EnvironmentFile= interprets quotes, backslashes and "$": a secret is one plain word.
_PLAIN = re.compile(r"^[!#%&(-\[\]-~]+$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SITE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A bridge's secret (the center's account ``bridge_<gateway>``): made on the center, copied to the building.
BRIDGE_SECRET = re.compile(r"^mqtt-bridge-[a-z][a-z0-9_]{0,47}$")
# A host name or an IP address (a bridge's address of the center's broker).
_ADDRESS = re.compile(r"^[A-Za-z0-9.:-]{1,253}$")


def bridge_secret(gateway: str) -> str:
    """The secret file of the bridge that carries ``gateway``'s topics (/etc/bcc/secrets/<name>)."""
    return f"mqtt-bridge-{gateway}"


def bridge_account(gateway: str) -> str:
    """The center broker's account of that bridge (its rights: only ``gateway``'s topics)."""
    return f"bridge_{gateway}"


class SettingsFileError(Exception):
    """The settings file is unusable; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def weakness(value: str, min_len: int = MIN_SECRET_LEN) -> str | None:
    """Why ``value`` is not acceptable as a secret, or None."""
    if not value:
        return "missing"
    if not _PLAIN.match(value):
        return "must be one word without spaces, quotes, backslashes or '$'"
    if len(value) < min_len:
        return f"weak: {len(value)} characters, at least {min_len} needed"
    if len(set(value)) < MIN_DISTINCT:
        return f"weak: fewer than {MIN_DISTINCT} different characters"
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDERS):
        return "weak: a placeholder, not a chosen secret"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CertKey(_Model):
    cert: Path
    key: Path


class BrokerTls(CertKey):
    """Mosquitto's TLS listener (8883): its CA, certificate and key; ``host`` is the name clients use;
    ``bind`` the one address it listens on (default: every interface, which then needs a firewall)."""

    ca: Path
    host: str | None = None
    bind: IPvAnyAddress | None = None


DEFAULT_QUEUE_MESSAGES = 200_000
DEFAULT_QUEUE_BYTES = 1 << 30


class BrokerQueue(_Model):
    """Mosquitto's per-client queue (``max_queued_messages``, ``max_queued_bytes``) on a center with
    ``bridges:``: when a building's link returns, its bridge hands the whole backlog of the cut to the
    center at once, and it waits in the recorder's queue there; it must hold every building's queue."""

    messages: int = Field(default=DEFAULT_QUEUE_MESSAGES, ge=1000)
    bytes: int = Field(default=DEFAULT_QUEUE_BYTES, ge=1 << 20)


class Bridge(_Model):
    """This host's Mosquitto bridged to the center's (a building behind a WAN, docs/operations.md,
    "Add a building"): it carries the topics of the gateway of ``site`` (one of sites:) over TLS to
    ``address``:``port``, whose certificate must be signed by ``ca``; QoS 1 messages wait in a queue of
    at most ``queue_messages`` and ``queue_bytes`` while the link is down."""

    site: str
    address: str
    port: int = Field(default=8883, ge=1, le=65535)
    ca: Path
    keepalive_s: int = Field(default=15, ge=5, le=300)
    queue_messages: int = Field(default=DEFAULT_QUEUE_MESSAGES, ge=1000)
    queue_bytes: int = Field(default=DEFAULT_QUEUE_BYTES, ge=1 << 20)

    @field_validator("address")
    @classmethod
    def _address(cls, address: str) -> str:
        if not _ADDRESS.match(address):
            raise ValueError(f"{address!r} is not a host name or IP address")
        return address


class Tls(_Model):
    portal: CertKey | None = None
    broker: BrokerTls | None = None


class Portal(_Model):
    database_url: str
    workers: int = Field(default=4, ge=1, le=MAX_ACCOUNTS)
    site: str
    jurisdiction_id: str = "binjaikota.go.id"

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, url: str) -> str:
        parts = urlsplit(url)
        if not _PLAIN.match(url):
            raise ValueError(
                "must be one word without spaces, quotes, backslashes or '$' (percent-encode them)"
            )
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must be postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        problem = weakness(unquote(parts.password or ""))
        if problem:
            raise ValueError(f"the database password: {problem}")
        return url

    @property
    def mqtt_accounts(self) -> int:
        """Broker accounts of the portal role: one per worker, at least the default."""
        return max(self.workers, DEFAULT_ACCOUNTS["portal"])


class InstallSettings(_Model):
    host: str
    services: list[Service] = Field(default_factory=lambda: list(SERVICES), min_length=1)
    tls: Tls = Tls()
    sites: dict[str, Path] = Field(default_factory=dict)
    portal: Portal | None = None
    # The recorder's InfluxDB user (every site's influxdb: section must use it with auth: basic).
    influxdb_username: str = "bcc_recorder"
    # Secrets given here instead of generated (e.g. the InfluxDB password an existing user has).
    secrets: dict[str, str] = Field(default_factory=dict)
    # A building: its broker bridged to the center's.
    bridge: Bridge | None = None
    # The center: the sites (of sites:) whose buildings' brokers bridge to this broker, each with an
    # account of its own that may publish only its gateway's topics.
    bridges: list[str] = Field(default_factory=list)
    # The center's per-client queue with bridges: (default 200,000 messages, 1 GiB; without bridges:
    # the packaged 10,000 and 64 MiB stay).
    bridges_queue: BrokerQueue = BrokerQueue()

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        if not _HOST.match(host):
            raise ValueError(f"{host!r} is not a fully qualified host name (e.g. portal.binjaikota.go.id)")
        return host

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: dict[str, Path]) -> dict[str, Path]:
        bad = [name for name in sites if not _SITE.match(name)]
        if bad:
            raise ValueError(f"site names {bad}: lower-case letters, digits, '-' and '_' (a unit instance)")
        return sites

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, given: dict[str, str]) -> dict[str, str]:
        problems = [
            f"{name}: unknown (known: {', '.join(SECRET_NAMES)}, mqtt-bridge-<gateway>)"
            for name in given
            if name not in SECRET_NAMES and not BRIDGE_SECRET.match(name)
        ]
        for name, value in given.items():
            known = name in SECRET_NAMES or BRIDGE_SECRET.match(name)
            if known and (why := weakness(str(value or ""), secret_min_len(name))):
                problems.append(f"{name}: {why}")
        if problems:
            raise ValueError("; ".join(problems))
        return given

    @model_validator(mode="after")
    def _needs(self) -> InstallSettings:
        problems = []
        wanted = set(self.services)
        if "nginx" in wanted and self.tls.portal is None:
            problems.append("nginx needs tls.portal (cert, key)")
        if "broker" in wanted and self.tls.broker is None and self.bridge is None:
            problems.append("broker needs tls.broker (ca, cert, key), or bridge: for a building's broker")
        if self.bridge is not None and "broker" not in wanted:
            problems.append("bridge: needs the broker service (the building's own Mosquitto)")
        if self.bridge is not None and self.bridge.site not in self.sites:
            problems.append(f"bridge.site {self.bridge.site!r} is not one of sites: {sorted(self.sites)}")
        if self.bridges and "broker" not in wanted:
            problems.append("bridges: needs the broker service (the center's Mosquitto)")
        if unknown := sorted(set(self.bridges) - set(self.sites)):
            problems.append(f"bridges {unknown}: not in sites: {sorted(self.sites)}")
        if wanted & {"portal", "nginx"} and self.portal is None:
            problems.append("portal and nginx need the portal: section")
        if wanted & {"gateway", "recorder", "grafana"} and not self.sites:
            problems.append("gateway, recorder and grafana need at least one site in sites:")
        if self.portal is not None and self.portal.site not in self.sites:
            problems.append(f"portal.site {self.portal.site!r} is not one of sites: {sorted(self.sites)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def wants(self, service: str) -> bool:
        return service in self.services


def secret_min_len(name: str) -> int:
    """The portal's session key needs 32 characters (portal/config.py); every other secret 16."""
    return 32 if name == "portal-secret-key" else MIN_SECRET_LEN


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_settings(path: Path) -> InstallSettings:
    """Read and validate the settings file; SettingsFileError lists every problem, one per line."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SettingsFileError([f"{path}: cannot read: {err.strerror or err}"]) from err
    except yaml.YAMLError as err:
        raise SettingsFileError([f"{path}: not YAML: {' '.join(str(err).split())}"]) from err
    if not isinstance(raw, dict):
        raise SettingsFileError([f"{path}: must be a mapping of settings"])
    try:
        return InstallSettings.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            message = e["msg"].removeprefix("Value error, ")
            problems += [f"{path}: {_where(e['loc'])}: {part}" for part in message.split("; ")]
        raise SettingsFileError(problems) from err
