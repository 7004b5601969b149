"""systemd's readiness protocol (sd_notify(3)) without a dependency: one datagram to ``$NOTIFY_SOCKET``.

The shipped units (deploy/systemd/) run the gateway and the recorder as ``Type=notify``: systemd counts
them as started only when they send ``READY=1``, which they do once their MQTT session is up. Outside
systemd ``NOTIFY_SOCKET`` is unset and :func:`notify` does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``, ``"STOPPING=1"``) to the service manager; False when there is
    none. An abstract socket (``@name``) and a path are both accepted; a socket that cannot be reached
    raises OSError, since a unit waiting for readiness would otherwise time out with no hint why."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        raise OSError(f"NOTIFY_SOCKET {address!r} is neither a path nor an abstract socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True


async def ready_when(event: asyncio.Event, status: str) -> None:
    """``READY=1`` (with ``STATUS=status``) once ``event`` is set, e.g. a service's "MQTT connected"."""
    await event.wait()
    notify(f"READY=1\nSTATUS={status}")


def stopping(stop: asyncio.Event) -> None:
    """The SIGTERM/SIGINT handler: ``STOPPING=1`` to systemd (when it runs us), then set ``stop``."""
    notify("STOPPING=1")
    stop.set()
