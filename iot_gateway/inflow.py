"""The bound on incoming MQTT messages waiting for a gateway handler (docs/mqtt.md, "Incoming messages").

aiomqtt 2.5.1 reads the socket whenever it is readable and queues every message; it has no way to push
back. Not reading the socket would not work either: handlers wait for the PUBACKs of their responses on
that same socket, so a paused gateway deadlocks itself (tried). And Mosquitto 2.0.11 (Debian 12) does
not keep its in-flight window once acknowledgements flow (measured: 10 PUBACKs released 1,000 more
messages), so manual acknowledgement does not bound it either. Hence a bound that drops: once ``limit``
messages wait, a command to a device this gateway does not serve is dropped (counted, never answered);
commands to its own devices and the gateway's own topics may use a second ``limit`` before they are
dropped too. A dropped command is never executed; its sender's own timeout applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiomqtt
import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)


def bound_incoming(
    client: aiomqtt.Client, limit: int, wanted: Callable[[str], bool], dropped: Counter
) -> None:
    """Drop what arrives while ``limit`` messages wait (``2 * limit`` for ``wanted`` topics)."""
    paho = client._client  # the paho client aiomqtt wraps (pinned version), as the recorder uses it
    deliver: Any = paho.on_message
    overflowing = False

    def on_message(c: Any, userdata: Any, message: Any) -> None:
        nonlocal overflowing
        waiting = len(client.messages)
        if waiting >= limit and (waiting >= 2 * limit or not wanted(message.topic)):
            dropped.inc()
            if not overflowing:  # once per episode: a flood must not flood the log too
                overflowing = True
                log.warning("mqtt_incoming_full", waiting=waiting, limit=limit, topic=message.topic)
            return  # paho still acknowledges a QoS 1 message: the broker's window stays open
        if overflowing and waiting < limit // 2:
            overflowing = False
            log.info("mqtt_incoming_drained", waiting=waiting)
        deliver(c, userdata, message)

    paho.on_message = on_message
