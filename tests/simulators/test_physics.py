"""The room model: lights and displays move lux, power, energy and temperature; never coils."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from devices.loader import DEMO_SITE, load_site
from simulators import SiteSimulator, start_site
from simulators.physics import RoomPhysics
from tests.support.simulators import tcp_client
from tests.support.wait import eventually


@pytest.fixture
async def live_room() -> AsyncIterator[SiteSimulator]:
    sim = await start_site(load_site(DEMO_SITE), port=0, physics=True, physics_period_s=0.02, seed=7)
    try:
        yield sim
    finally:
        await sim.stop()


async def test_lights_on_raise_lux_and_power(live_room: SiteSimulator) -> None:
    front, back, meter = (live_room.device(d) for d in ("env_front", "env_back", "meter_main"))
    await eventually(lambda: meter.get_point("voltage_l1") != 230.0)  # physics is running
    assert front.get_point("illuminance") == 0 and meter.get_point("power_total") == 0.0
    async with tcp_client(live_room, "room_rs485") as client:
        assert not (await client.write_coils(0, [True] * 4, device_id=1)).isError()
        assert not (await client.write_coils(0, [True] * 4, device_id=2)).isError()
    # 8 circuits: about 320 lx at both sensors, about 480 W
    await eventually(lambda: all(280 <= float(s.get_point("illuminance")) <= 360 for s in (front, back)))
    await eventually(lambda: 460 <= float(meter.get_point("power_total")) <= 500)
    phases = [float(meter.get_point(f"power_l{n}")) for n in (1, 2, 3)]
    assert sum(phases) == pytest.approx(float(meter.get_point("power_total")), abs=2)
    assert all(p > 0 for p in phases)
    volts = float(meter.get_point("voltage_l1"))
    amps = float(meter.get_point("current_l1"))
    assert amps == pytest.approx(phases[0] / (volts * 0.95), abs=0.02)
    assert 225 < float(meter.get_point("voltage_l2")) < 235
    assert 49.8 < float(meter.get_point("frequency")) < 50.2


async def test_physics_never_writes_coils_or_holding_registers(live_room: SiteSimulator) -> None:
    wall, lights = live_room.device("wall"), live_room.device("lights_a")
    wall.set_point("layout", "split_3")
    lights.set_point("relay_5", True)
    meter = live_room.device("meter_main")
    start = meter.get_point("voltage_l3")
    await eventually(lambda: meter.get_point("voltage_l3") != start)
    assert wall.get_point("layout") == "split_3" and lights.get_point("relay_5") is True
    assert wall.get_point("display_1_source") == "hdmi_1" and lights.get_point("device_address") == 1


async def test_hand_set_measurement_becomes_the_new_state(live_room: SiteSimulator) -> None:
    env = live_room.device("env_back")
    env.set_point("co2", 1500)
    # the next steps drift from 1500, not back from the old state
    await eventually(lambda: env.get_point("co2") != 1500)
    assert 1400 < int(env.get_point("co2")) < 1550


async def test_displays_warm_the_room_and_settle() -> None:
    """Deterministic steps (no timing): an hour of all 7 displays on."""
    sim = await start_site(load_site(DEMO_SITE), port=0, physics=False)
    try:
        wall, env, meter = sim.device("wall"), sim.device("env_front"), sim.device("meter_main")
        for n in range(1, 8):
            wall.set_point(f"display_{n}_power", True)  # the controller's feedback follows at once
        assert wall.get_point("display_7_on") is True
        physics = RoomPhysics(list(sim.devices.values()), random.Random(1))
        physics.step(60.0)
        assert float(env.get_point("temperature")) == pytest.approx(24.5 + 7 * 0.05, abs=0.1)
        energy_before = float(meter.get_point("energy_import"))
        for _ in range(60):
            physics.step(60.0)
        # bounded: settles 3.5 °C above the 24.5 °C base (10-minute time constant)
        assert float(env.get_point("temperature")) == pytest.approx(28.0, abs=0.2)
        assert float(meter.get_point("power_total")) == pytest.approx(7 * 150, rel=0.03)
        energy = float(meter.get_point("energy_import")) - energy_before
        assert energy == pytest.approx(1.05, rel=0.03)  # kWh: 1050 W for an hour
        assert float(wall.get_point("controller_temperature")) == pytest.approx(42.0, abs=0.5)
        assert wall.get_point("display_3_power") is True and wall.get_point("layout") == "wide"
    finally:
        await sim.stop()
