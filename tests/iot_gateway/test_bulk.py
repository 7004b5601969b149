"""Bulk telemetry messages: grouped by device, split below the size limit, oldest dropped when full.
(End to end with the real gateway, broker, recorder and InfluxDB:
tests/iot_gateway/recorder/test_end_to_end.py.)
"""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry, Counter

from iot_gateway.bulk import TelemetryBatcher


async def never(topic: str, payload: bytes, retain: bool) -> bool:
    raise AssertionError("these tests only encode")


def batcher(**kwargs: int) -> TelemetryBatcher:
    registry = CollectorRegistry()
    sent = Counter("sent", "", registry=registry)
    dropped = Counter("dropped", "", registry=registry)
    return TelemetryBatcher(never, "bcc/bridge/telemetry", 0.05, sent, dropped, **kwargs)


def state(n: int) -> bytes:
    return orjson.dumps({"value": n, "ts": f"2026-11-27T10:15:{n % 60:02d}Z"})


def test_states_are_grouped_by_device_in_arrival_order() -> None:
    b = batcher()
    for n, device in enumerate(["a", "b", "a", "c", "a"]):
        b.add(device, state(n))
    count, payload = b._encode()
    assert count == 5
    body = orjson.loads(payload)
    assert [s["value"] for s in body["a"]] == [0, 2, 4] and body["b"][0]["value"] == 1 and len(body) == 3


def test_messages_stay_under_the_size_limit_and_take_the_oldest_first() -> None:
    b = batcher(max_bytes=200)
    for n in range(20):
        b.add(f"dev{n % 3}", state(n))
    seen: list[int] = []
    while b.pending:
        count, payload = b._encode()
        assert len(payload) <= 200 and count >= 1
        body = orjson.loads(payload)
        seen.extend(s["value"] for states in body.values() for s in states)
        for _ in range(count):
            b._pending.popleft()
    assert sorted(seen) == list(range(20))
    big = batcher(max_bytes=10)  # a single state larger than the limit still goes out, alone
    big.add("a", state(1))
    assert big._encode()[0] == 1


def test_oldest_states_are_dropped_beyond_the_bound_and_counted() -> None:
    b = batcher(max_pending=3)
    for n in range(5):
        b.add("a", state(n))
    assert b.pending == 3 and b._dropped._value.get() == 2
    assert [s["value"] for s in orjson.loads(b._encode()[1])["a"]] == [2, 3, 4]
