"""Errors of the broker tooling (secrets, config rendering, starting Mosquitto)."""

from __future__ import annotations

from collections.abc import Iterable


class BrokerError(Exception):
    """Base class of broker set-up errors."""


class MissingSecretsError(BrokerError):
    """Some roles have no password (or a too-short one); ``problems`` names every one."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("MQTT secrets: " + "; ".join(self.problems))


class BrokerStartError(BrokerError):
    """Mosquitto exited or did not accept a connection in time; the message ends with its log."""
