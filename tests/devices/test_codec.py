"""Register codec: word/byte order, scale, enums, bit fields; checked against struct, not itself."""

from __future__ import annotations

import struct

import pytest

from devices.codec import CodecError, decode_registers, encode_registers, to_raw
from devices.loader import load_profiles
from devices.models import DataType, Label, Point, Table

PROFILES = load_profiles()


def regs(fmt: str, value: float) -> list[int]:
    data = struct.pack(">" + fmt, value)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def point(**kw: object) -> Point:
    base: dict[str, object] = {
        "key": "p",
        "label": Label(id="p", en="p"),
        "table": Table.HOLDING_REGISTER,
        "address": 0,
    }
    base.update(kw)
    return Point.model_validate(base)


def test_sdm630_float32_big_word_order() -> None:
    p = PROFILES["sdm630"].point("voltage_l1")
    assert decode_registers(p, regs("f", 231.25)) == 231.2  # precision 1, rounded half to even
    assert decode_registers(p, regs("f", 229.5)) == 229.5


def test_float32_little_word_order() -> None:
    p = point(type=DataType.FLOAT32, word_order="little", unit="V")
    hi, lo = regs("f", 229.5)
    assert decode_registers(p, [lo, hi]) == 229.5
    assert encode_registers(p, 229.5) == [lo, hi]


@pytest.mark.parametrize(
    ("dtype", "fmt", "value"),
    [
        (DataType.INT16, "h", -1234),
        (DataType.UINT16, "H", 65000),
        (DataType.INT32, "i", -70000),
        (DataType.UINT32, "I", 4_000_000_000),
        (DataType.INT64, "q", -(2**40)),
        (DataType.UINT64, "Q", 2**63 + 5),
        (DataType.FLOAT64, "d", 12345.678),
    ],
)
def test_types_big_endian(dtype: DataType, fmt: str, value: float) -> None:
    p = point(type=dtype, unit="1")
    assert decode_registers(p, regs(fmt, value)) == value
    assert encode_registers(p, value) == regs(fmt, value)


def test_byte_order_little_swaps_bytes_in_each_register() -> None:
    p = point(type=DataType.UINT16, byte_order="little", unit="1")
    assert decode_registers(p, [0x3412]) == 0x1234


def test_scale_offset_and_signed_temperature() -> None:
    p = PROFILES["envsensor"].point("temperature")
    assert decode_registers(p, regs("h", -32)) == -3.2
    assert encode_registers(p, 24.5) == [245]
    with pytest.raises(CodecError, match="multiple of the step"):
        encode_registers(p, 24.55)


def test_enum_both_ways() -> None:
    p = PROFILES["videowall7"].point("layout")
    assert decode_registers(p, [3]) == "split_4"
    assert encode_registers(p, "split_7") == [4]
    assert decode_registers(p, [42]) == "unknown_42"
    with pytest.raises(CodecError, match="unknown value"):
        encode_registers(p, "split_5")


def test_bit_field() -> None:
    p = point(type=DataType.BOOL, bit=3)
    assert decode_registers(p, [0b1000]) is True
    assert decode_registers(p, [0b0111]) is False


def test_limits_and_types_rejected() -> None:
    p = PROFILES["envsensor"].point("humidity")
    with pytest.raises(CodecError, match="above the maximum"):
        to_raw(p, 101)
    with pytest.raises(CodecError, match="expected a number"):
        to_raw(p, "50")
    with pytest.raises(CodecError, match="expected a number"):
        to_raw(p, True)
    q = point(type=DataType.INT16, unit="1")
    with pytest.raises(CodecError, match="does not fit"):
        encode_registers(q, 40000)
