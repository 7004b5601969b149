"""``bcc influx provision``: InfluxDB 1.x with authentication on, prepared by its admin.

Run by the admin with InfluxDB's admin credentials (``BCC_INFLUX_ADMIN_USER``,
``BCC_INFLUX_ADMIN_PASSWORD`` / ``BCC_INFLUX_ADMIN_PASSWORD_FILE``; no defaults). Idempotent. It creates
the database, retention policies and continuous query of the site's recorder (the recorder's own
:func:`~iot_gateway.recorder.provision.ensure_schema`), the recorder's user (``influxdb.username``,
its password from ``BCC_INFLUX_PASSWORD(_FILE)`` or ``influxdb.password_file``) with WRITE on the
database only, and Grafana's user (``--grafana-user``, ``BCC_INFLUX_GRAFANA_USER``, default ``grafana``;
password from ``BCC_INFLUX_GRAFANA_PASSWORD(_FILE)``) with READ only. A user that exists gets its
password set only when the configured one does not log in, loses admin rights, and has its privilege
on the database made exactly the one above (grants on other databases are left alone).

With ``--create-admin`` a server that has no user yet gets its admin (``BCC_INFLUX_ADMIN_USER`` with
its password) first: InfluxDB 1.x with authentication on accepts exactly that one statement from
anyone until an admin exists, so the installer's unit (deploy/systemd/bcc-influx-provision@.service)
makes it before anyone else can.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bcc_common.secrets import SecretFileError, read_secret
from devices.loader import PROFILE_DIR, ConfigError, LoadedSite, load_site
from iot_gateway.recorder.config import InfluxSettings, resolve_influx
from iot_gateway.recorder.influx import InfluxClient, InfluxError, InfluxRejected, InfluxUnavailable
from iot_gateway.recorder.provision import ensure_schema, retention_policies, site_measurements

# InfluxQL quotes identifiers and strings with backslash escapes; user names are kept to plain ones.
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@\-]{0,63}$")


class ProvisionError(Exception):
    """One line saying what is wrong (the command exits 2)."""


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    privilege: str  # "WRITE" (the recorder) or "READ" (Grafana)


@dataclass(frozen=True)
class Plan:
    settings: InfluxSettings
    measurements: frozenset[str]
    admin: Account
    accounts: tuple[Account, ...]


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _secret(env: Mapping[str, str], var: str) -> str:
    try:
        value = read_secret(env, var)
    except SecretFileError as err:
        raise ProvisionError(str(err)) from err
    if value is None:
        raise ProvisionError(f"{var} or {var}_FILE is not set (no default)")
    if any(ord(c) < 32 for c in value):
        raise ProvisionError(f"{var}: the password contains a control character")
    return value


def _user(name: str, what: str) -> str:
    if not _USER.match(name):
        raise ProvisionError(f"{what} {name!r}: use letters, digits, _ . @ - (at most 64, not a digit first)")
    return name


def plan(loaded: LoadedSite, env: Mapping[str, str], where: str, grafana_user: str | None) -> Plan:
    """Everything the provisioning needs from the site file and the environment, checked first."""
    problems: list[str] = []
    access = resolve_influx(loaded, env, where, problems)
    settings = access.settings
    if settings.version != "1":
        problems.append(f"{where}: influxdb.version {settings.version}: provisioning is for InfluxDB 1.x")
    if settings.auth != "basic":
        problems.append(f"{where}: influxdb.auth must be basic (the recorder's user) to provision users")
    if problems:
        raise ProvisionError("; ".join(problems))
    assert settings.username is not None and access.password is not None  # resolve_influx checked them
    admin_name = env.get("BCC_INFLUX_ADMIN_USER")
    if not admin_name:
        raise ProvisionError("BCC_INFLUX_ADMIN_USER is not set (no default)")
    admin = Account(
        _user(admin_name, "BCC_INFLUX_ADMIN_USER"), _secret(env, "BCC_INFLUX_ADMIN_PASSWORD"), "ALL"
    )
    recorder = Account(_user(settings.username, "influxdb.username"), access.password, "WRITE")
    grafana_name = grafana_user or env.get("BCC_INFLUX_GRAFANA_USER") or "grafana"
    grafana = Account(
        _user(grafana_name, "Grafana's user"), _secret(env, "BCC_INFLUX_GRAFANA_PASSWORD"), "READ"
    )
    names = [admin.name, recorder.name, grafana.name]
    if len(set(names)) != 3:
        raise ProvisionError(f"the admin, recorder and Grafana users must differ: {names}")
    return Plan(settings, site_measurements(loaded), admin, (recorder, grafana))


def _rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    return [row for s in results[0].get("series", []) for row in s.get("values", [])]


class Provisioner:
    def __init__(self, plan: Plan, create_admin: bool = False) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.admin = self._client(plan.admin)
        self.create_admin = create_admin
        self.lines: list[str] = []

    def _client(self, account: Account) -> InfluxClient:
        settings = self.settings.model_copy(update={"auth": "basic", "username": account.name})
        return InfluxClient(settings, account.password)

    async def aclose(self) -> None:
        await self.admin.aclose()

    async def _logs_in(self, account: Account) -> bool:
        client = self._client(account)
        try:
            await client.query("SHOW DATABASES")
            return True
        except InfluxRejected as err:
            if err.status == 401:
                return False
            raise
        finally:
            await client.aclose()

    async def check_admin(self) -> None:
        url, name = self.settings.url, self.plan.admin.name
        try:
            await self.admin.query("SHOW USERS")
        except InfluxUnavailable as err:
            raise ProvisionError(f"InfluxDB at {url} is unreachable: {err}") from err
        except InfluxRejected as err:
            if err.status == 401:
                raise ProvisionError(
                    f"InfluxDB at {url} refused the admin user {name!r}: wrong user or password "
                    "(BCC_INFLUX_ADMIN_USER / BCC_INFLUX_ADMIN_PASSWORD)"
                ) from err
            if "create admin user first" in str(err) and self.create_admin:
                who, password = quote_ident(name), quote_string(self.plan.admin.password)
                await self.admin.query(
                    f"CREATE USER {who} WITH PASSWORD {password} WITH ALL PRIVILEGES", post=True
                )
                self.lines.append(f"admin {name} created (InfluxDB had no user)")
                self.create_admin = False
                return await self.check_admin()
            if "create admin user first" in str(err):
                raise ProvisionError(
                    f"InfluxDB at {url} has no admin yet: create it first (the first user must be one), "
                    f"influx -execute \"CREATE USER {name} WITH PASSWORD '...' WITH ALL PRIVILEGES\""
                ) from err
            raise ProvisionError(f"InfluxDB at {url}: {name!r} is not an admin ({err})") from err
        wrong = Account(name, self.plan.admin.password + "-not-it", "ALL")
        if await self._logs_in(wrong):
            raise ProvisionError(
                f"InfluxDB at {url} runs without authentication: set auth-enabled = true under [http] "
                "in influxdb.conf and restart it (users would protect nothing)"
            )

    async def ensure_account(self, account: Account) -> list[str]:
        """Create or correct one user; returns what changed."""
        db, who = self.settings.database, quote_ident(account.name)
        changes: list[str] = []
        users = {row[0]: bool(row[1]) for row in _rows(await self.admin.query("SHOW USERS"))}
        if account.name not in users:
            await self.admin.query(
                f"CREATE USER {who} WITH PASSWORD {quote_string(account.password)}", post=True
            )
            changes.append("created")
        elif not await self._logs_in(account):
            await self.admin.query(f"SET PASSWORD FOR {who} = {quote_string(account.password)}", post=True)
            changes.append("password set")
        if users.get(account.name):
            await self.admin.query(f"REVOKE ALL PRIVILEGES FROM {who}", post=True)
            changes.append("admin rights revoked")
        grants = {row[0]: row[1] for row in _rows(await self.admin.query(f"SHOW GRANTS FOR {who}"))}
        if grants.get(db) != account.privilege:
            if db in grants:
                await self.admin.query(f"REVOKE ALL ON {quote_ident(db)} FROM {who}", post=True)
            await self.admin.query(f"GRANT {account.privilege} ON {quote_ident(db)} TO {who}", post=True)
            changes.append(f"granted {account.privilege} on {db} (was {grants.get(db, 'nothing')})")
        return changes

    async def run(self) -> list[str]:
        """Provision; returns the lines to print."""
        await self.check_admin()
        s = self.settings
        await ensure_schema(self.admin, s, self.plan.measurements)
        rps = ", ".join(f"{name} {duration}" for name, duration, _ in retention_policies(s))
        lines = [
            *self.lines,
            f"InfluxDB {s.url}: database {s.database}, retention policies {rps}, continuous query: ok",
        ]
        for account in self.plan.accounts:
            changes = await self.ensure_account(account)
            lines.append(
                f"user {account.name} ({account.privilege} on {s.database}): "
                + (", ".join(changes) if changes else "unchanged")
            )
        return lines


async def provision(plan: Plan, create_admin: bool = False) -> list[str]:
    provisioner = Provisioner(plan, create_admin)
    try:
        return await provisioner.run()
    except InfluxError as err:
        raise ProvisionError(f"InfluxDB at {plan.settings.url}: {err}") from err
    finally:
        await provisioner.aclose()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser(
        "provision",
        help="create the database, retention policies, continuous query and users (as InfluxDB's admin)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--site", required=True, help="the recorder's site YAML file")
    p.add_argument(
        "--profiles", type=Path, action="append", default=[], help="extra profile directory (repeatable)"
    )
    p.add_argument(
        "--grafana-user",
        default=None,
        help="Grafana's read-only user (default: BCC_INFLUX_GRAFANA_USER or grafana)",
    )
    p.add_argument(
        "--create-admin",
        action="store_true",
        help="create the admin user (BCC_INFLUX_ADMIN_USER) on a server that has no user yet",
    )


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site, (PROFILE_DIR, *args.profiles))
        lines = asyncio.run(
            provision(plan(loaded, os.environ, args.site, args.grafana_user), args.create_admin)
        )
    except ConfigError as err:
        print(f"bcc influx provision: {'; '.join(err.problems)}", file=sys.stderr)
        return 2
    except ProvisionError as err:
        print(f"bcc influx provision: {err}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0
