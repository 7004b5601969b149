"""Retained device topics (state, availability) on their way to the broker: polling never waits for them.

A device's poll hands its new state to ``RetainedOutbox.put`` and goes on polling; the outbox sends what
was handed over every ``STATE_BATCH_S`` (QoS 1, retained) while fewer than ``limit`` of its publishes
await a PUBACK, all of one batch in one socket write (iot_gateway.mqtt.coalesce_writes). Beyond the
window, and while there is no connection, it keeps only the latest payload per topic: a retained
topic means "the value now", so a newer state replaces one not yet sent (latest wins), and what waits
is bounded by the number of topics, never by time. Each batch, each PUBACK while the window was full,
each publish failed (no PUBACK within ``PUBLISH_TIMEOUT_S``, or the connection lost) and each new
connection send what waits.

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

# How long a state handed over waits for others to share its socket write. At 1,500 states/s spread
# over the second, one per event-loop pass, each state cost its own send() and two selector updates
# (paho's writer on and off): a third of the gateway's busy time (py-spy, docs/performance.md).
STATE_BATCH_S = 0.005
# Of the connection's window of QoS 1 publishes in flight (iot_gateway.mqtt.MqttLink.window: 100 with
# our broker over MQTT 5, paho's 20 over 3.1.1), this many stay free for command responses, lease and
# command-share records, so those never queue in paho behind device states.
RESERVED_FOR_OTHERS = 10


class Link(Protocol):
    @property
    def can_publish(self) -> bool: ...

    @property
    def window(self) -> int: ...

    def publish_nowait(
        self, topic: str, payload: bytes | str, retain: bool, qos: int = 1
    ) -> asyncio.Future[bool] | bool: ...


class RetainedOutbox:
    def __init__(self, link: Link, batch_s: float = STATE_BATCH_S) -> None:
        self._link = link
        self._batch_s = batch_s
        self._batch: asyncio.TimerHandle | None = None  # the next batch's send, while one is due
        self.in_flight = 0  # sent, PUBACK not yet in (nor failed)
        self._waiting: dict[str, bytes] = {}  # topic -> latest payload not yet sent, oldest topic first

    @property
    def limit(self) -> int:
        """States that may await a PUBACK at once: the connection's window less what stays reserved."""
        return max(1, self._link.window - RESERVED_FOR_OTHERS)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def put(self, topic: str, payload: bytes, at_once: bool = False) -> None:
        """Keep ``payload`` as ``topic``'s latest (replacing an older one still waiting), sent with the
        next batch as far as the window allows. ``at_once`` sends it to the connection now, even past
        the window (a command's read-back: its state goes out before the response)."""
        waiting = self._waiting
        waiting.pop(topic, None)  # re-inserted last: waiting topics are in the order of their values' age
        if at_once and self._link.can_publish:
            self._send(topic, payload)
            return
        waiting[topic] = payload
        if self._batch_s <= 0:
            self.flush()
        elif self._batch is None:
            self._batch = asyncio.get_running_loop().call_later(self._batch_s, self._send_batch)

    def discard(self, topics: Iterable[str]) -> None:
        """Forget what waits for ``topics`` (a device removed: its topics are being cleared)."""
        for topic in topics:
            self._waiting.pop(topic, None)

    def _send_batch(self) -> None:
        self._batch = None
        self.flush()

    def flush(self) -> None:
        """Send what waits, oldest first, as far as the window allows (a batch, a connect, an ack)."""
        waiting, limit = self._waiting, self.limit
        while waiting and self.in_flight < limit and self._link.can_publish:
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
        if self._waiting and self._batch is None:  # the window was full: what waits goes as room frees
            self.flush()
