"""The decoders precomputed per read block give exactly what decoding each point does (every shipped
profile, random registers), and the synthetic profile takes the plain path."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest

from devices.codec import CodecError, bool_text, decode_registers
from devices.loader import load_profiles
from devices.models import DataType, DeviceProfile
from iot_gateway.device import decode_block
from iot_gateway.planner import ReadBlock, plan_reads
from simulators import synthetic

PROFILES = {**load_profiles(), "synthetic": synthetic.profile(30)}


def reference(block: ReadBlock, raw: list[int]) -> dict[str, Any]:
    """Point by point, as the gateway decoded before the block decoders."""
    out: dict[str, Any] = {}
    for key, offset, count, point in block.layout:
        if block.table.is_bit:
            out[key] = "ON" if raw[offset] else "OFF"
            continue
        value = decode_registers(point, raw[offset : offset + count])
        out[key] = bool_text(value) if isinstance(value, bool) else value
    return out


def blocks(profile: DeviceProfile) -> list[ReadBlock]:
    out = []
    for group in profile.poll_groups:
        out += plan_reads(profile, [p for p in profile.points if p.group == group])
    return out + plan_reads(profile, profile.points, max_gap=0)  # the command read-back plan


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_block_decoders_match_point_by_point_decoding(model: str) -> None:
    rng = random.Random(model)
    for block in blocks(PROFILES[model]):
        top = 1 if block.table.is_bit else 0xFFFF
        for _ in range(200):
            raw = [rng.randint(0, top) for _ in range(block.count)]
            try:
                want: Any = reference(block, raw)
            except CodecError as err:  # the same refusal
                want = type(err)
            try:
                got: Any = decode_block(block, raw)
            except CodecError as err:
                got = type(err)
            assert got == want, (model, block.start, raw)
            if isinstance(got, dict):
                assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_synthetic_block_is_plain_and_a_short_answer_is_refused() -> None:
    (block,) = plan_reads(PROFILES["synthetic"], PROFILES["synthetic"].points)
    assert block.plain_keys is not None and len(block.plain_keys) == 30
    assert decode_block(block, list(range(30))) == {f"tag_{i:03d}": i for i in range(30)}
    with pytest.raises(CodecError):
        decode_block(block, list(range(29)))


@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("kind", ["float32", "float64"])
def test_a_non_finite_float_decodes_to_none_in_both_paths(kind: str, word_order: str) -> None:
    """NaN, +Inf and -Inf: the point has no valid value (JSON null); the block's other points decode."""
    meter = PROFILES["sdm630"]  # its voltages as points of the kind and word order under test
    points = [
        meter.point(f"voltage_l{n}").model_copy(
            update={"key": key, "type": DataType(kind), "word_order": word_order, "address": 4 * n}
        )
        for n, key in ((1, "a"), (2, "b"))
    ]
    profile = meter.model_copy(update={"points": points})
    (block,) = plan_reads(profile, profile.points)
    fmt = ">d" if kind == "float64" else ">f"
    for bad in (math.nan, math.inf, -math.inf):
        raw = [0] * block.count
        for key, offset, count, _ in block.layout:
            raw[offset : offset + count] = words(fmt, bad if key == "a" else 2.5, word_order)
        assert decode_block(block, raw) == reference(block, raw) == {"a": None, "b": 2.5}
        assert decode_registers(profile.point("a"), raw[: profile.point("a").register_count]) is None


def words(fmt: str, value: float, word_order: str) -> list[int]:
    data = struct.pack(fmt, value)
    out = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return out[::-1] if word_order == "little" else out
