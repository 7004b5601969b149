"""``--change-every-s``: every read-only register of every synthetic device changes past the deadband
each period (the scale benchmark's peer-harness workload); writable registers keep what was written."""

from __future__ import annotations

import asyncio

from simulators import start_site, synthetic
from tests.support.wait import eventually


async def test_every_readonly_register_changes_past_the_deadband_each_period() -> None:
    sim = await start_site(synthetic.loaded_site(3, 5), physics=False, port=0)
    try:
        devices = list(sim.devices.values())
        for dev in devices:
            dev.set_registers("holding_register", 0, [100, 200, 300, 400, 65534])
        task = asyncio.create_task(synthetic.change_all(sim, period_s=0.05))
        try:
            await eventually(lambda: devices[-1].get_registers("holding_register", 1, 1)[0] != 200, step=0.01)
        finally:
            task.cancel()
        for dev in devices:
            regs = dev.get_registers("holding_register", 0, 5)
            steps = {(new - old) % 65536 for new, old in zip(regs[1:], [200, 300, 400, 65534], strict=True)}
            assert regs[0] == 100  # tag_000 is writable: commands own it
            # Every read-only register moved by the same number of whole steps (past the deadband of 2).
            assert len(steps) == 1 and steps.pop() % synthetic.CHANGE_STEP == 0
            assert synthetic.profile_dict(5)["points"][1]["deadband"] < synthetic.CHANGE_STEP
    finally:
        await sim.stop()


async def test_a_site_without_readonly_registers_has_nothing_to_change() -> None:
    """One tag per device is the writable ``tag_000`` only: change_all returns at once instead of
    looping over no slices without ever giving the event loop back."""
    sim = await start_site(synthetic.loaded_site(2, 1), physics=False, port=0)
    try:
        await asyncio.wait_for(synthetic.change_all(sim, period_s=0.05), 2)
    finally:
        await sim.stop()
