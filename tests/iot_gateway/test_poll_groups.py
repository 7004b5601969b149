"""Each poll group is read at its own interval, measured in the simulator's read log.

The wall controller's profile has two groups (devices/profiles/videowall7.yaml): ``default`` (coils,
discrete inputs, the layout register) and ``slow`` (the source registers and the controller
temperature, the only input register). Their reads are told apart by function code: read coils (1)
only in ``default``, read input registers (4) only in ``slow``. The simulator stamps each request with
``time.monotonic()``, the clock of the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics

from mosquitto import MosquittoProcess
from simulators.device import ReadRecord
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, running_gateway, tuned_site
from tests.support.wait import eventually

READ_COILS, READ_INPUT_REGISTERS = 1, 4
FAST_S, SLOW_S = 0.1, 0.35
WINDOW_S = 3.0


def starts(reads: list[ReadRecord], function_code: int, since: float, until: float) -> list[float]:
    return [r.time for r in reads if r.function_code == function_code and since <= r.time <= until]


async def test_two_poll_groups_run_at_their_own_intervals(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    wall = room_sim.device("wall")
    site = tuned_site(room_sim.site_for_clients(), ["wall"], {"wall": {"default": FAST_S, "slow": SLOW_S}})
    loop = asyncio.get_running_loop()
    async with running_gateway(gateway_config(site, mosquitto)) as gw:
        # Both groups have started (each begins at a stable offset within its first period).
        await eventually(lambda: {1, 4} <= {r.function_code for r in wall.reads}, timeout=5)
        since = loop.time()
        until = since + WINDOW_S
        await eventually(
            lambda: any(r.time > until for r in wall.reads if r.function_code == READ_COILS),
            timeout=WINDOW_S + 5,
            step=0.1,
            what=f"a poll after the {WINDOW_S} s window",
        )
        missed = gw.metrics.missed_deadlines.labels("wall")._value.get()
    reads = list(wall.reads)
    fast = starts(reads, READ_COILS, since, until)
    slow = starts(reads, READ_INPUT_REGISTERS, since, until)
    for name, times, interval in (("default", fast, FAST_S), ("slow", slow, SLOW_S)):
        expected = WINDOW_S / interval
        assert abs(len(times) - expected) <= 1 + 0.1 * expected, (name, len(times), expected)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        mean = (times[-1] - times[0]) / (len(times) - 1)
        assert abs(mean - interval) <= 0.1 * interval, f"{name}: mean interval {mean:.3f} s, not {interval}"
        assert abs(statistics.median(gaps) - interval) <= 0.2 * interval, (name, gaps)
    ratio = len(fast) / len(slow)
    assert abs(ratio - SLOW_S / FAST_S) <= 0.6, f"default/slow reads {len(fast)}/{len(slow)} = {ratio:.2f}"
    # The slow group's reads never ride along with the fast one's: one input-register read per slow
    # poll, none between.
    assert all(r.address == 0 and r.count == 1 for r in reads if r.function_code == READ_INPUT_REGISTERS)
    assert missed == 0
