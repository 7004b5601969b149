"""Plan block reads: merge neighbouring points of one table into as few Modbus requests as allowed.

A block never exceeds the protocol limits (125 registers, 2000 bits), never spans an address the
profile marks unreadable, and never bridges a gap wider than ``max_gap`` unused addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from devices.codec import BlockDecoder, block_decoder
from devices.models import MAX_READ_BITS, MAX_READ_REGISTERS, DeviceProfile, Point, Table


@dataclass(frozen=True)
class ReadBlock:
    table: Table
    start: int
    count: int
    points: tuple[Point, ...]
    # (key, offset in block, register count, point), computed once: pydantic properties cost more
    # than the decoding itself at 15,000 tags/s (py-spy, docs/performance.md).
    layout: tuple[tuple[str, int, int, Point], ...] = field(init=False, repr=False, compare=False)
    # (key, decoder of the whole block), and the keys when every register is one plain 16-bit unsigned
    # point in address order (then the values are the registers themselves: ``zip``).
    decoders: tuple[tuple[str, BlockDecoder], ...] = field(init=False, repr=False, compare=False)
    plain_keys: tuple[str, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lay = tuple((p.key, p.address - self.start, p.register_count, p) for p in self.points)
        object.__setattr__(self, "layout", lay)
        bits = self.table.is_bit
        decs = tuple((key, block_decoder(p, offset, bits)) for key, offset, _, p in lay)
        object.__setattr__(self, "decoders", decs)
        plain = len(lay) == self.count and all(
            isinstance(dec, itemgetter) and lay[i][1] == i for i, (_, dec) in enumerate(decs)
        )
        object.__setattr__(self, "plain_keys", tuple(key for key, *_ in lay) if plain else None)

    @property
    def end(self) -> int:
        return self.start + self.count


def plan_reads(profile: DeviceProfile, points: Iterable[Point], max_gap: int = 16) -> list[ReadBlock]:
    """Group ``points`` (all from ``profile``) into read blocks, in table then address order."""
    by_table: dict[Table, list[Point]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    blocks: list[ReadBlock] = []
    for table in Table:
        pts = sorted(by_table.get(table, []), key=lambda p: (p.address, p.key))
        limit = MAX_READ_BITS if table.is_bit else MAX_READ_REGISTERS
        current: list[Point] = []
        start = end = 0
        for p in pts:
            if current:
                new_end = max(end, p.end)
                gap_ok = p.address - end <= max_gap
                span_ok = new_end - start <= limit
                clean = not any(profile.is_unreadable(table, a) for a in range(end, p.address))
                if gap_ok and span_ok and clean:
                    current.append(p)
                    end = new_end
                    continue
                blocks.append(ReadBlock(table, start, end - start, tuple(current)))
            current, start, end = [p], p.address, p.end
        if current:
            blocks.append(ReadBlock(table, start, end - start, tuple(current)))
    return blocks
