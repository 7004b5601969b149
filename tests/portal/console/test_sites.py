"""A second site (devices/sites/two_floors.yaml) drawn by the console and the wall with no code change:
its simulators, the gateway, Mosquitto and the portal, every device and circuit read from the site file."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices.loader import load_site
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator, start_site
from tests.support.site_expect import TWO_FLOORS, Expected, expected
from tests.support.stack import Console, Stack, portal_stack
from tests.support.wait import eventually

EXPECT = expected(TWO_FLOORS)


@pytest.fixture
async def floors_sim() -> AsyncIterator[SiteSimulator]:
    sim = await start_site(load_site(TWO_FLOORS), port=0, physics=False)
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def floors(
    tmp_path: Path, sqlite_template: Path, mosquitto: MosquittoProcess, floors_sim: SiteSimulator
) -> AsyncIterator[Stack]:
    async with portal_stack(tmp_path, sqlite_template, mosquitto, floors_sim, site_file=TWO_FLOORS) as s:
        yield s


def _shown(page: str, device: str, point: str) -> str | None:
    m = re.search(rf'<span class="v" data-device="{device}" data-point="{point}"[^>]*>([^<]*)</span>', page)
    return m[1] if m else None


async def _all_online(c: Console, e: Expected) -> bool:
    snap = await c.state()
    return all(snap["availability"].get(d) == "online" and d in snap["states"] for d in e.devices)


def test_the_example_differs_from_the_demo_room() -> None:
    # The proof is only worth something if the second site really has other ids and counts.
    assert len(EXPECT.circuits) == 24 and len(EXPECT.walls) == 2
    assert not {"lights_a", "lights_b", "wall", "env_front", "meter_main"} & set(EXPECT.devices)


async def test_console_draws_every_device_of_the_site(floors: Stack) -> None:
    sim = floors.sim
    assert sim is not None
    await sim.device(EXPECT.circuits[-1][0]).set_point(EXPECT.circuits[-1][1], True)
    async with floors.console("operator") as c:
        await eventually(lambda: _all_online(c, EXPECT), timeout=20)
        page = await c.open()
        assert f"Lampu ({len(EXPECT.circuits)} sirkuit)" in page
        for n, (device, point) in enumerate(EXPECT.circuits, 1):
            # Every circuit, numbered in the site's order, showing what the device reports.
            want = "ON" if (device, point) == EXPECT.circuits[-1] else "OFF"
            assert _shown(page, device, point) == want, (n, device, point)
            assert f"<strong>Sirkuit {n}</strong> <small>{device}.{point}</small>" in page
        for device, displays in EXPECT.walls:
            assert html.escape(EXPECT.devices[device]) in page
            for power, feedback in displays:
                assert _shown(page, device, power) == "OFF" and _shown(page, device, feedback) == "OFF"
            assert f'name="target" value="{device}"' in page  # its own layout form
        for device, points in EXPECT.sensors + EXPECT.meters:
            for point in points:
                assert _shown(page, device, point) not in (None, "—"), (device, point)
        for device, name in EXPECT.devices.items():
            assert f'data-avail="{device}">tersedia' in page and html.escape(name) in page

        # Controls reach the right device: the last circuit, and display 3 of the second wall.
        device, point = EXPECT.circuits[-1]
        [cmd] = await c.send("circuit", f"{device}.{point}", "OFF")
        assert (await c.result(cmd["transaction"]))["status"] == "ok"
        assert sim.device(device).get_point(point) is False
        wall, displays = EXPECT.walls[1]
        [cmd] = await c.send("display", f"{wall}.{displays[2][0]}", "ON")
        assert cmd["device"] == wall and (await c.result(cmd["transaction"]))["status"] == "ok"
        assert sim.device(wall).get_point(displays[2][0]) is True
        assert sim.device(EXPECT.walls[0][0]).get_point(displays[2][0]) is False

        async def fed_back() -> bool:
            return bool((await c.state())["states"][wall].get(displays[2][1]) == "ON")

        await eventually(fed_back)

        # The wall's room panel of the same portal: every wall, sensor, meter and device of the site.
        room = (await c.http.get("/dinding")).text
        assert f"<dd>0 / {len(EXPECT.circuits)}</dd>" in room
        for device, displays in EXPECT.walls:
            on = 1 if device == wall else 0
            assert (
                f"<dt>Layar menyala {html.escape(EXPECT.devices[device])}</dt><dd>{on} / {len(displays)}"
                in room
            )
        for device, _points in EXPECT.sensors:
            assert f"<dt>Suhu {html.escape(EXPECT.devices[device])}</dt><dd>" in room
        for device, _points in EXPECT.meters:
            assert f"<dt>Daya listrik {html.escape(EXPECT.devices[device])}</dt><dd>" in room
        for name in EXPECT.devices.values():
            assert f"{html.escape(name)}: tersedia" in room
