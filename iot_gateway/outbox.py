"""Retained device topics (state, availability) on their way to the broker: polling never waits for them.

A device's poll hands its new state to ``RetainedOutbox.put`` and goes on polling; the outbox sends it
at once (QoS 1, retained) while fewer than ``limit`` of its publishes await a PUBACK. Beyond that, and
while there is no connection, it keeps only the latest payload per topic: a retained topic means "the
value now", so a newer state replaces one not yet sent (latest wins), and what waits is bounded by the
number of topics, never by time. Each PUBACK, each publish failed (no PUBACK within
``PUBLISH_TIMEOUT_S``, or the connection lost) and each new connection send what waits.

Why: while the broker link is dead but not yet detected (a dropped route: no RST, keepalive not yet
expired), a publish that awaits its PUBACK waits the whole ``PUBLISH_TIMEOUT_S``; a poll that awaited
its state's publish then missed its next slots and merged the changes in between
(tests/iot_gateway/test_publish_stall.py). Publishes still in paho's window when a dead link is finally
detected are lost with the clean session; the gateway republishes every device's current state and
availability on each connect (``Gateway._announce``), which covers them.

Order: a topic's payloads reach the broker in the order they were put (one connection, and at most one
waiting payload per topic). Across topics there is no promise once the window is full, except for a
command's read-back: its state is put ``at_once``, handed to the connection past the window, so it
still reaches the broker before the command's response (docs/architecture.md, "State before
response").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

# Publishes of device states awaiting their PUBACK at once. Below the gateway's MQTT window
# (iot_gateway.mqtt.PUBLISH_WINDOW, 100) so that command responses, lease and command-share records
# always find room in it instead of queueing behind states in paho.
STATE_WINDOW = 90


class Link(Protocol):
    @property
    def can_publish(self) -> bool: ...

    def publish_nowait(
        self, topic: str, payload: bytes | str, retain: bool, qos: int = 1
    ) -> asyncio.Future[bool] | bool: ...


class RetainedOutbox:
    def __init__(self, link: Link, limit: int = STATE_WINDOW) -> None:
        self._link = link
        self.limit = limit
        self.in_flight = 0  # sent, PUBACK not yet in (nor failed)
        self._waiting: dict[str, bytes] = {}  # topic -> latest payload not yet sent, oldest topic first

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def put(self, topic: str, payload: bytes, at_once: bool = False) -> None:
        """Send ``payload`` retained on ``topic`` now if the window has room, else keep it as the topic's
        latest (replacing an older one that was waiting). ``at_once`` sends it to the connection even
        when the window is full (a command's read-back: its state goes out before the response)."""
        waiting = self._waiting
        if at_once:
            waiting.pop(topic, None)  # older than this one
            if self._link.can_publish:
                self._send(topic, payload)
                return
        elif not waiting and self.in_flight < self.limit and self._link.can_publish:
            self._send(topic, payload)
            return
        waiting.pop(topic, None)  # re-inserted last: waiting topics are in the order of their values' age
        waiting[topic] = payload
        self.flush()

    def discard(self, topics: Iterable[str]) -> None:
        """Forget what waits for ``topics`` (a device removed: its topics are being cleared)."""
        for topic in topics:
            self._waiting.pop(topic, None)

    def flush(self) -> None:
        """Send what waits, oldest first, as far as the window allows (after a connect, after an ack)."""
        waiting = self._waiting
        while waiting and self.in_flight < self.limit and self._link.can_publish:
            topic = next(iter(waiting))
            if not self._send(topic, waiting.pop(topic)):
                return

    def _send(self, topic: str, payload: bytes) -> bool:
        sent = self._link.publish_nowait(topic, payload, True)
        if sent is False:  # the connection refused it (going down): kept for the next connection
            self._waiting.setdefault(topic, payload)
            return False
        if sent is not True:
            self.in_flight += 1
            sent.add_done_callback(self._done)
        return True

    def _done(self, _future: asyncio.Future[bool]) -> None:
        self.in_flight -= 1
        if self._waiting:
            self.flush()
