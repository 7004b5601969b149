"""The ``influxdb:`` section of a site file: where and how the recorder writes (typed with the site, so
``bcc gateway --check-config`` and ``bcc recorder --check-config`` both reject a broken section)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
