"""Bulk telemetry (``gateway.telemetry_batch_ms``): device states collected for a few milliseconds and
published together, ``{"<device>": [<state>, ...], ...}``, QoS 1, on ``<base>/bridge/telemetry``.

Each state is also published on the device's own retained topic, unchanged: Home Assistant, the
console and any other reader keep working. The recorder reads the bulk topic instead, so a gateway
with hundreds of devices sends it one MQTT message per batch instead of one per device state (the
per-message cost, not the values, limits a Python subscriber: docs/performance.md, Recorder).

States are kept as the JSON their device topic carried, and the batch is written by concatenation
(no second encoding). While the broker is away, batches stay pending (oldest dropped beyond
``max_pending`` states, counted) and go out after the reconnect: the history survives a broker
outage, not just the latest retained state.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import orjson
import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

PublishOk = Callable[[str, bytes, bool], Awaitable[bool]]
# Well under the broker's message_size_limit (mosquitto/mosquitto.conf: 256 KiB).
MAX_MESSAGE_BYTES = 200_000


class TelemetryBatcher:
    def __init__(
        self,
        publish: PublishOk,
        topic: str,
        interval_s: float,
        sent: Counter,
        dropped: Counter,
        max_pending: int = 100_000,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._publish = publish
        self.topic = topic
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self._sent = sent
        self._dropped = dropped
        self._pending: deque[tuple[bytes, bytes]] = deque()  # (JSON-encoded device id, state JSON)
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, device: str, state: bytes) -> None:
        """Queue one state exactly as published on the device's topic."""
        self._pending.append((orjson.dumps(device), state))
        if len(self._pending) > self.max_pending:
            self._pending.popleft()
            self._dropped.inc()
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.interval_s)  # collect what else arrives in this window
            self._wake.clear()
            await self.flush()
            if self._pending:  # the broker is away: try again after the next interval
                self._wake.set()

    async def flush(self) -> None:
        """Publish everything pending, in messages of at most ``max_bytes``; stop at the first failed
        publish and keep the rest (``run`` retries every interval)."""
        while self._pending:
            count, payload = self._encode()
            if not await self._publish(self.topic, payload, False):
                log.debug("bulk_telemetry_held", pending=len(self._pending))
                return
            for _ in range(count):
                self._pending.popleft()
            self._sent.inc(count)

    def _encode(self) -> tuple[int, bytes]:
        """The oldest pending states that fit into one message (at least one), grouped by device."""
        groups: dict[bytes, list[bytes]] = {}
        size = 2
        count = 0
        for device, state in self._pending:
            extra = len(state) + 1 + (0 if device in groups else len(device) + 4)
            if count and size + extra > self.max_bytes:
                break
            groups.setdefault(device, []).append(state)
            size += extra
            count += 1
        body = b",".join(device + b":[" + b",".join(states) + b"]" for device, states in groups.items())
        return count, b"{" + body + b"}"
