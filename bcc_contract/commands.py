"""Command and response shapes on ``<base>/<device>/set`` and ``<base>/<device>/response``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson

from bcc_common.timefmt import iso_ms, utc_now

# Keys of a command payload that are not device points.
RESERVED_KEYS = frozenset({"transaction", "ts"})


class CommandStatus(StrEnum):
    """The final answer to a command (docs/mqtt.md, "Command responses")."""

    OK = "ok"
    FAILED_READBACK = "failed_readback"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    STALE = "stale"
    DEVICE_UNAVAILABLE = "device_unavailable"


RESULT_STATUSES: tuple[str, ...] = tuple(s.value for s in CommandStatus)


def response_payload(
    device: str,
    transaction: str | None,
    status: CommandStatus,
    error: str | None = None,
    state: dict[str, Any] | None = None,
) -> bytes:
    """The JSON response to one command; ``transaction`` is echoed so the sender can match it."""
    body: dict[str, Any] = {"device": device, "transaction": transaction, "status": status.value}
    if error:
        body["error"] = error
    if state is not None:
        body["state"] = state
    body["ts"] = iso_ms(utc_now())
    return orjson.dumps(body)
