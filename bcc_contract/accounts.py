"""Broker accounts: one per process, because the broker makes every client's id its username.

Mosquitto takes over a client id: a second connection with the same id disconnects the first. With
``use_username_as_clientid`` on every listener (mosquitto/mosquitto.conf) the id is the username, so an
account can never take over another account's connection (docs/security.md, "MQTT accounts"). The price
is that two processes must not share an account. A role (the rights in mosquitto/acl) therefore has one
account per process that may run at once: ``gateway`` for the one gateway, ``portal_1`` ...
``portal_8`` for up to eight portal workers. Every account of a role has the role's password (the
secret ``mqtt_<role>``) and the role's topic rights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# The roles of mosquitto/acl, each with its own secret.
ROLES: tuple[str, ...] = ("gateway", "recorder", "portal", "operator", "readonly", "homeassistant", "alarms")
# Accounts per role where more than one process of the role runs at once: the portal's workers
# (`bcc portal serve --workers N` needs N <= this; BCC_PORTAL_MQTT_ACCOUNTS must match).
DEFAULT_ACCOUNTS: Mapping[str, int] = {"portal": 8}
MAX_ACCOUNTS = 64


def account_names(role: str, count: int) -> list[str]:
    """The usernames of ``role``: the role itself when it has one account, else ``<role>_1`` ..."""
    if count < 1 or count > MAX_ACCOUNTS:
        raise ValueError(f"{role}: between 1 and {MAX_ACCOUNTS} accounts, not {count}")
    return [role] if count == 1 else [f"{role}_{k}" for k in range(1, count + 1)]


def parse_account_counts(items: Iterable[str], roles: Iterable[str] = ROLES) -> dict[str, int]:
    """``["portal=4", "readonly=3"]`` -> counts over DEFAULT_ACCOUNTS; ValueError naming every bad item."""
    roles = tuple(roles)
    counts = dict(DEFAULT_ACCOUNTS)
    problems: list[str] = []
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or role not in roles or not value.isascii() or not value.isdigit():
            problems.append(f"{item!r}: expected ROLE=N with ROLE one of {', '.join(roles)}")
        elif not 1 <= int(value) <= MAX_ACCOUNTS:
            problems.append(f"{item!r}: between 1 and {MAX_ACCOUNTS} accounts")
        else:
            counts[role] = int(value)
    if problems:
        raise ValueError("; ".join(problems))
    return counts
