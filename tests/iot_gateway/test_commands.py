"""parse_command's checks of ``ts`` (the send time) on their own; the command path end to end, with the
write log of a simulated device, is tests/iot_gateway/test_command_path.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bcc_contract.commands import CommandStatus
from devices.loader import load_profiles
from iot_gateway.commands import MAX_FUTURE_SKEW_S, Command, CommandRejected, parse_command

RELAY8 = load_profiles()["relay8"]
NOW = 1_796_000_000.0  # 2026-11-30T00:53:20Z
TTL_S = 10.0


def parse(body: dict[str, Any], require_ts: bool = True) -> Command:
    return parse_command(
        "lights_a",
        RELAY8,
        orjson.dumps(body),
        max_bytes=16_384,
        now=NOW,
        ttl_s=TTL_S,
        require_ts=require_ts,
    )


def refusal(body: dict[str, Any], require_ts: bool = True) -> CommandRejected:
    with pytest.raises(CommandRejected) as caught:
        parse(body, require_ts)
    return caught.value


def test_without_ts_is_rejected_with_its_transaction() -> None:
    err = refusal({"relay_1": "ON", "transaction": "no-ts"})
    assert err.status is CommandStatus.REJECTED
    assert err.transaction == "no-ts"
    assert str(err) == (
        "ts missing: a command must say when it was sent (ISO-8601 with timezone or epoch seconds)"
    )


def test_without_ts_is_rejected_before_its_points_are_judged() -> None:
    """The missing send time is named, not the unknown point: the sender's first thing to fix."""
    assert str(refusal({"relay_9": "ON"})).startswith("ts missing")


def test_without_ts_and_not_required_is_parsed() -> None:
    cmd = parse({"relay_1": "ON", "transaction": "old-style"}, require_ts=False)
    assert cmd.transaction == "old-style"
    assert [(w.point.key, w.value, w.coil) for w in cmd.writes] == [("relay_1", "ON", True)]


@pytest.mark.parametrize("require_ts", [True, False])
@pytest.mark.parametrize(
    "ts",
    [
        NOW,
        NOW - TTL_S,
        NOW + MAX_FUTURE_SKEW_S,
        int(NOW),
        "2026-11-30T00:53:20Z",
        "2026-11-30T07:53:15+07:00",
    ],
)
def test_a_fresh_ts_is_accepted_either_way(ts: Any, require_ts: bool) -> None:
    cmd = parse({"relay_2": "OFF", "ts": ts}, require_ts)
    assert [(w.point.key, w.coil) for w in cmd.writes] == [("relay_2", False)]


@pytest.mark.parametrize("require_ts", [True, False])
def test_an_old_ts_is_stale_either_way(require_ts: bool) -> None:
    err = refusal({"relay_1": "ON", "transaction": "t", "ts": NOW - TTL_S - 0.5}, require_ts)
    assert err.status is CommandStatus.STALE and err.transaction == "t"
    assert str(err) == f"command is 10.5 s old (TTL {TTL_S} s)"


@pytest.mark.parametrize("require_ts", [True, False])
def test_a_ts_in_the_future_is_rejected_either_way(require_ts: bool) -> None:
    err = refusal({"relay_1": "ON", "ts": NOW + MAX_FUTURE_SKEW_S + 1}, require_ts)
    assert err.status is CommandStatus.REJECTED and "in the future" in str(err)


@pytest.mark.parametrize("require_ts", [True, False])
@pytest.mark.parametrize("ts", [None, True, "yesterday", "2026-11-30T00:53:20", [NOW], {"s": NOW}])
def test_a_ts_that_is_no_time_is_rejected_either_way(ts: Any, require_ts: bool) -> None:
    """``"ts": null`` is not a missing ts that the setting could let through: it is a bad one."""
    err = refusal({"relay_1": "ON", "ts": ts}, require_ts)
    assert err.status is CommandStatus.REJECTED
    assert str(err) == "ts must be ISO-8601 with timezone or epoch seconds"
