"""Pydantic models for a site file: the broker, the buses, the device instances placed on them, the
recorder's InfluxDB section and what the operator console draws.

A site is the one YAML file an installation edits. It is validated as a whole (with the profiles it
references) before the gateway or the simulators open a socket; see ``devices.loader``.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from bcc_common.ident import Ident
from devices.console import ConsoleSection
from devices.influxdb import InfluxSettings

# Device ids that would collide with BCC's own topics under the base topic (bcc_contract.topics).


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsSettings(Frozen):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class MqttSettings(Frozen):
    """Broker connection. Secrets never live in the site file: see docs/configuration.md."""

    url: str = "mqtt://127.0.0.1:1883"
    base_topic: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")] = "bcc"
    client_id: str | None = None
    username: str | None = None
    # Path of a file holding the password; BCC_MQTT_PASSWORD overrides it.
    password_file: str | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    tls: TlsSettings | None = None
    reconnect_min_s: Annotated[float, Field(gt=0)] = 0.2
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0
    discovery_prefix: str = "homeassistant"
    # Gateway only (docs/mqtt.md, "Incoming messages"): messages handled at once, and how many may wait
    # for a handler before commands to unknown devices are dropped (twice that: any message).
    incoming_handlers: Annotated[int, Field(ge=1, le=1024)] = 32
    incoming_queue: Annotated[int, Field(ge=1, le=65535)] = 1000

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker URL {url!r}: no host")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError(f"broker URL {url!r}: bad port") from err
        return url

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme in ("mqtts", "ssl") else 1883)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme in ("mqtts", "ssl") or self.tls is not None


class GatewaySettings(Frozen):
    """Gateway behaviour shared by all devices (docs/configuration.md lists every key)."""

    name: Ident = "gateway"
    # The gateway id on the broker (topics <base>/bridge/<id>/...; docs/mqtt.md "Fleet"): the owner of
    # this site's devices. None: the site id. Two processes with the same id are one gateway (standby).
    id: Ident | None = None
    # Active and standby (docs/mqtt.md "Active and standby"): every process of this gateway (same site
    # file, own broker account, own --instance) competes for a lease on the broker of this many seconds;
    # one polls and writes, a standby takes over about lease_s after the active one stops renewing.
    # None: one process, no lease.
    lease_s: Annotated[float, Field(ge=1, le=60)] | None = None
    command_deadline_ms: Annotated[int, Field(ge=50, le=60000)] = 2000
    command_ttl_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # A command without ``ts`` has no age, so the TTL cannot refuse it: it is rejected. False executes
    # one anyway (the old behaviour), safe only for a gateway whose broker queues nothing for it (a
    # local broker, no bridge): docs/configuration.md. `bcc install` refuses false for a bridged site.
    require_command_ts: StrictBool = True
    offline_after_failures: Annotated[int, Field(ge=1, le=100)] = 3
    heartbeat_s: Annotated[float, Field(gt=0)] = 60.0
    breaker_max_backoff_s: Annotated[float, Field(gt=0)] = 30.0
    readback_delay_ms: Annotated[int, Field(ge=0, le=5000)] = 0
    max_payload_bytes: Annotated[int, Field(ge=64, le=1_048_576)] = 16_384
    transaction_memory: Annotated[int, Field(ge=16)] = 1024
    # HTTP /metrics and /healthz; None disables it, 0 picks a free port (logged).
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    metrics_host: str = "127.0.0.1"
    # Period of the retained bcc/bridge/health message (counters for the Gateway health dashboard).
    health_period_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Bulk telemetry: besides each device's retained state, every state published within this many
    # milliseconds also goes out in ONE message on <base>/bridge/telemetry, and the recorder reads that
    # topic instead of the per-device ones (one MQTT message per batch instead of per device: for sites
    # with hundreds of devices). None: off.
    telemetry_batch_ms: Annotated[int, Field(ge=10, le=10_000)] | None = None
    # Bulk telemetry states not yet sent (broker away) are kept in this SQLite file, so they survive a
    # gateway restart; None: in memory only. Relative paths are relative to the working directory.
    telemetry_spool_path: Annotated[str, Field(min_length=1)] | None = None
    # Bound of the states waiting for the broker (memory and file); beyond it the oldest are dropped
    # and counted (bcc_gateway_bulk_telemetry_dropped_total).
    telemetry_max_pending: Annotated[int, Field(ge=10, le=100_000_000)] = 100_000


class TcpBus(Frozen):
    name: Ident
    type: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=0, le=65535)] = 502
    # Frame format on the TCP connection: plain Modbus TCP, or RTU frames tunnelled over TCP.
    framer: Literal["socket", "rtu"] = "socket"
    timeout_ms: Annotated[int, Field(ge=10, le=60000)] = 1000
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0


class RtuBus(Frozen):
    name: Ident
    type: Literal["rtu"]
    port: str
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_ms: Annotated[int, Field(ge=10, le=60000)] = 1000
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0

    @property
    def frame_gap_s(self) -> float:
        """Silence required between RTU frames: 3.5 character times, at least 1.75 ms above 19200 baud."""
        char_bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return max(3.5 * char_bits / self.baudrate, 0.00175)


Bus = Annotated[TcpBus | RtuBus, Field(discriminator="type")]


class DeviceInstance(Frozen):
    id: Ident
    name: str
    profile: Ident
    bus: Ident
    unit: Annotated[int, Field(ge=0, le=247)]
    area: str | None = None
    # Per-group poll interval overrides: {"default": 1.0, "slow": 30}.
    poll_s: dict[str, Annotated[float, Field(gt=0, le=86400)]] = Field(default_factory=dict)


class Site(Frozen):
    site: Ident
    label: str = ""
    mqtt: MqttSettings = MqttSettings()
    gateway: GatewaySettings = GatewaySettings()
    buses: tuple[Bus, ...] = ()
    devices: tuple[DeviceInstance, ...] = ()
    # The recorder's InfluxDB connection (the gateway ignores it; typed here so every check rejects a typo).
    influxdb: InfluxSettings | None = None
    # What the operator console, the wall's room panel and the Command room dashboard draw (devices.console).
    console: ConsoleSection | None = None

    @property
    def gateway_id(self) -> str:
        """The id this site's gateway uses on the broker: ``gateway.id``, else the site id."""
        return self.gateway.id or self.site

    def bus(self, name: str) -> TcpBus | RtuBus:
        for b in self.buses:
            if b.name == name:
                return b
        raise KeyError(name)

    def device(self, device_id: str) -> DeviceInstance:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)
