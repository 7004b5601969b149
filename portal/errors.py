"""The portal's exceptions; routes map them to pages, Open311 errors or HTTP status codes."""

from __future__ import annotations

from collections.abc import Mapping


class PortalError(Exception):
    """Base class of the portal's errors."""


class InvalidInput(PortalError):
    """The input has problems; ``errors`` maps each field to a message key of ``portal.i18n``."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(", ".join(f"{k}: {v}" for k, v in self.errors.items()))


class NotFound(PortalError):
    """No such report (or it is not visible to the caller)."""


class TransitionRefused(PortalError):
    """The report's status does not allow this step; the message is a message key."""


class Forbidden(PortalError):
    """The staff member's role or agency does not allow this."""
