"""Bulk telemetry messages: grouped by device, split below the size limit, oldest dropped when full.
(End to end with the real gateway, broker, recorder and InfluxDB:
tests/iot_gateway/recorder/test_end_to_end.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from devices.loader import DEMO_SITE, ConfigError, load_site, site_from_dict
from iot_gateway.bulk import PublishOk, SpoolError, TelemetryBatcher, TelemetrySpool, spooled_states


async def never(topic: str, payload: bytes, retain: bool) -> bool:
    raise AssertionError("these tests only encode")


def batcher(publish: PublishOk = never, **kwargs: Any) -> TelemetryBatcher:
    registry = CollectorRegistry()
    sent = Counter("sent", "", registry=registry)
    dropped = Counter("dropped", "", registry=registry)
    return TelemetryBatcher(publish, "bcc/bridge/telemetry", 0.05, sent, dropped, **kwargs)


def state(n: int) -> bytes:
    return orjson.dumps({"value": n, "ts": f"2026-11-27T10:15:{n % 60:02d}Z"})


def test_states_are_grouped_by_device_in_arrival_order() -> None:
    b = batcher()
    for n, device in enumerate(["a", "b", "a", "c", "a"]):
        b.add(device, state(n))
    count, payload = b._encode(b._pending)
    assert count == 5
    body = orjson.loads(payload)
    assert [s["value"] for s in body["a"]] == [0, 2, 4] and body["b"][0]["value"] == 1 and len(body) == 3


def test_messages_stay_under_the_size_limit_and_take_the_oldest_first() -> None:
    b = batcher(max_bytes=200)
    for n in range(20):
        b.add(f"dev{n % 3}", state(n))
    seen: list[int] = []
    while b.pending:
        count, payload = b._encode(b._pending)
        assert len(payload) <= 200 and count >= 1
        body = orjson.loads(payload)
        seen.extend(s["value"] for states in body.values() for s in states)
        for _ in range(count):
            b._pending.popleft()
    assert sorted(seen) == list(range(20))
    big = batcher(max_bytes=10)  # a single state larger than the limit still goes out, alone
    big.add("a", state(1))
    assert big._encode(big._pending)[0] == 1


def test_oldest_states_are_dropped_beyond_the_bound_and_counted() -> None:
    b = batcher(max_pending=3)
    for n in range(5):
        b.add("a", state(n))
    assert b.pending == 3 and b._dropped._value.get() == 2
    assert [s["value"] for s in orjson.loads(b._encode(b._pending)[1])["a"]] == [2, 3, 4]


def test_the_spool_file_keeps_states_across_a_reopen_and_drops_the_oldest_beyond_the_bound(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool" / "telemetry.sqlite3"
    b = batcher(max_pending=10, spool=TelemetrySpool(path))
    for n in range(6):
        b.add(f"dev{n % 2}", state(n))
    b.spill()  # what run() does when a publish fails: the window's states go to the file
    for n in range(6, 14):
        b.add("dev0", state(n))
    b.close()  # the stop path: what is left in memory joins them
    assert b._dropped._value.get() == 4
    kept = spooled_states(path)
    assert [orjson.loads(s)["value"] for _, s in kept] == list(range(4, 14))
    assert [d for d, _ in kept][:2] == ["dev0", "dev1"]

    again = batcher(max_pending=5, spool=TelemetrySpool(path))  # a restart with a lower bound
    assert again.pending == 5 and again._dropped._value.get() == 5
    count, payload = again._encode((d, s) for _, d, s in again.spool.oldest())  # type: ignore[union-attr]
    assert count == 5 and [s["value"] for s in orjson.loads(payload)["dev0"]] == [9, 10, 11, 12, 13]
    again.close()


def test_an_unusable_spool_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SpoolError, match=r"telemetry spool .*file/spool\.sqlite3"):
        TelemetrySpool(tmp_path / "file" / "spool.sqlite3")


def test_a_spool_file_without_bulk_telemetry_is_a_configuration_error() -> None:
    loaded = load_site(DEMO_SITE)
    assert loaded.site.gateway.telemetry_batch_ms == 100  # the shipped default (docs/configuration.md)
    raw = loaded.site.model_dump(mode="json", exclude_none=True)
    del raw["gateway"]["telemetry_batch_ms"]
    with pytest.raises(ConfigError) as err:
        site_from_dict(raw, loaded.profiles)
    assert err.value.problems == [
        "<site>: gateway: telemetry_spool_path needs telemetry_batch_ms (bulk telemetry)"
    ]


async def test_states_dropped_while_a_publish_waits_for_its_ack_are_neither_lost_nor_sent_twice() -> None:
    """At the bound, add() drops the oldest states, which may be the ones a publish is carrying."""
    sent: list[int] = []
    b: TelemetryBatcher

    async def publish(topic: str, payload: bytes, retain: bool) -> bool:
        sent.extend(s["value"] for s in orjson.loads(payload)["a"])
        if len(sent) == 3:  # two polls arrive while the first message waits for its PUBACK
            b.add("a", state(3))
            b.add("a", state(4))
        return True

    b = batcher(publish, max_pending=3)
    for n in range(3):
        b.add("a", state(n))
    assert await b.flush()
    assert sent == [0, 1, 2, 3, 4] and b.pending == 0
