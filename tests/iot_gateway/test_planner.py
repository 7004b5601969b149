"""Block planning: merge neighbours, respect limits and unreadable ranges."""

from __future__ import annotations

from devices.loader import load_profiles
from devices.models import DeviceProfile, Table
from iot_gateway.planner import plan_reads

PROFILES = load_profiles()


def blocks_of(profile: DeviceProfile, group: str = "default") -> list[tuple[Table, int, int]]:
    pts = [p for p in profile.points if p.group == group]
    return [(b.table, b.start, b.count) for b in plan_reads(profile, pts)]


def test_relays_are_one_coil_read() -> None:
    assert blocks_of(PROFILES["relay8"]) == [(Table.COIL, 0, 8)]


def test_far_apart_registers_are_split() -> None:
    assert blocks_of(PROFILES["relay8"], "slow") == [
        (Table.HOLDING_REGISTER, 16384, 1),
        (Table.HOLDING_REGISTER, 32768, 1),
    ]


def test_unreadable_register_is_never_spanned() -> None:
    # envsensor: registers 0-2 and 4; register 3 is marked unreadable.
    assert blocks_of(PROFILES["envsensor"]) == [(Table.INPUT_REGISTER, 0, 3), (Table.INPUT_REGISTER, 4, 1)]


def test_sdm630_merges_within_gap_limit() -> None:
    got = blocks_of(PROFILES["sdm630"])
    # 0-17 (9 floats); 52-53 is 34 addresses further (gap > 16): new block; 70-73 is 16 past 53: merged.
    assert got == [(Table.INPUT_REGISTER, 0, 18), (Table.INPUT_REGISTER, 52, 22)]


def test_register_limit_125() -> None:
    raw = {
        "model": "wide",
        "manufacturer": "t",
        "label": {"id": "t", "en": "t"},
        "source": "t",
        "points": [
            {
                "key": f"r{i}",
                "label": {"id": "r", "en": "r"},
                "table": "holding_register",
                "address": i * 2,
                "type": "float32",
                "unit": "1",
            }
            for i in range(100)
        ],
    }
    prof = DeviceProfile.model_validate(raw)
    blocks = plan_reads(prof, prof.points)
    assert [b.count for b in blocks] == [124, 76]
    assert all(b.count <= 125 for b in blocks)
