"""Create the database, retention policies and rollup continuous query (InfluxDB 1.x) on start.

Idempotent: existing retention policies are altered to the configured duration, and the continuous
query is replaced only when its definition changed. 2.x and 3.x have no RPs or CQs over the v1 API:
there the buckets and DBRP mappings are created once by hand (docs/influxdb.md).

With authentication on, InfluxDB 1.x lets only admins create them: ``bcc influx provision``
(iot_gateway/recorder/influx_admin.py) runs :func:`ensure_schema` as the admin, and the recorder's
write-only user checks with :func:`verify_schema` what it can (the database and retention policies).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from devices.loader import LoadedSite
from iot_gateway.recorder.config import InfluxSettings
from iot_gateway.recorder.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from iot_gateway.recorder.schema import REPORTS_RP

log = structlog.get_logger(__name__)

RAW_RP = "raw"
ROLLUP_RP = "rollup"
ROLLUP_CQ = "cq_rollup"


def site_measurements(loaded: LoadedSite) -> frozenset[str]:
    """The device measurements of a site (one per profile): what the rollup query covers."""
    return frozenset(p.model for p in loaded.profiles.values())


def retention_policies(settings: InfluxSettings) -> list[tuple[str, str, bool]]:
    """(name, duration, default) of every retention policy the recorder expects."""
    return [
        (RAW_RP, settings.raw_retention, True),
        (ROLLUP_RP, settings.rollup_retention, False),
        (REPORTS_RP, settings.reports_retention, False),
    ]


def rollup_query(settings: InfluxSettings, measurements: Iterable[str]) -> str:
    """Means of every numeric field of the device measurements, per ``rollup_interval``, kept longer."""
    db = settings.database
    names = "|".join(sorted(measurements))
    return (
        f'CREATE CONTINUOUS QUERY "{ROLLUP_CQ}" ON "{db}" BEGIN '
        f'SELECT mean(*) INTO "{db}"."{ROLLUP_RP}".:MEASUREMENT FROM "{db}"."{RAW_RP}"./^({names})$/ '
        f"GROUP BY time({settings.rollup_interval}), * END"
    )


async def ensure_schema(client: InfluxClient, settings: InfluxSettings, measurements: Iterable[str]) -> None:
    db = settings.database
    await client.query(f'CREATE DATABASE "{db}"', post=True)
    results = await client.query(f'SHOW RETENTION POLICIES ON "{db}"')
    existing = {row[0] for s in results[0].get("series", []) for row in s["values"]}
    for name, duration, default in retention_policies(settings):
        verb = "ALTER" if name in existing else "CREATE"
        extra = " REPLICATION 1" if verb == "CREATE" else ""
        await client.query(
            f'{verb} RETENTION POLICY "{name}" ON "{db}" DURATION {duration}{extra}'
            + (" DEFAULT" if default else ""),
            post=True,
        )
    cq = rollup_query(settings, measurements)
    results = await client.query("SHOW CONTINUOUS QUERIES")
    current = {
        row[0]: row[1]
        for s in results[0].get("series", [])
        if s.get("name") == db
        for row in s.get("values", [])
    }
    if current.get(ROLLUP_CQ) != cq:
        if ROLLUP_CQ in current:
            await client.query(f'DROP CONTINUOUS QUERY "{ROLLUP_CQ}" ON "{db}"', post=True)
        await client.query(cq, post=True)
    log.info("influx_schema_ready", database=db, retention=settings.raw_retention)


async def verify_schema(client: InfluxClient, settings: InfluxSettings) -> list[str]:
    """What a write-only user can check, as problems (empty: ready to write).

    An empty write is measured on 1.6.7 to answer 404 for a missing database, 403 without WRITE on it
    and 500 "retention policy not found" for a missing retention policy, storing nothing. The
    continuous query needs READ to be seen: a write-only user cannot check it.
    """
    db = settings.database
    problems: list[str] = []
    for name, _duration, _default in retention_policies(settings):
        try:
            await client.write(b"", rp=name)
        except InfluxRejected as err:
            if err.status == 404:
                return [f"database {db!r} does not exist"]
            return [f"user {settings.username!r} may not write to database {db!r} ({err})"]
        except InfluxUnavailable as err:
            if "retention policy not found" not in str(err):
                raise
            problems.append(f"retention policy {name!r} does not exist on database {db!r}")
    return problems
