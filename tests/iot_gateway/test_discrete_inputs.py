"""Discrete inputs are read from their own table (function code 2) and published as "ON"/"OFF".

The wall controller reports each display's power on a discrete input (``display_N_on``, addresses
0-6) next to the coil that switches it (``display_N_power``). The test sets inputs directly in the
simulator, leaving the coils off: a gateway that read the coils, the wrong addresses or another table
would publish something else.
"""

from __future__ import annotations

from typing import Any

from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, tuned_site

READ_DISCRETE_INPUTS = 2
TOPIC = "bcc/wall"


def inputs(state: dict[str, Any]) -> list[str]:
    return [state[f"display_{n}_on"] for n in range(1, 8)]


async def test_discrete_inputs_are_read_through_the_gateway(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    wall = room_sim.device("wall")
    site = tuned_site(room_sim.site_for_clients(), ["wall"], {"wall": {"default": 0.1}})
    async with probe(mosquitto) as p, running_gateway(gateway_config(site, mosquitto)):
        first = await p.wait_for(TOPIC, timeout=10)
        assert inputs(first) == ["OFF"] * 7

        wall.set_point("display_3_on", True)  # the input only: display 3's coil stays off
        state = await p.wait_for(TOPIC, lambda s: s["display_3_on"] == "ON")
        assert inputs(state) == ["OFF", "OFF", "ON", "OFF", "OFF", "OFF", "OFF"]
        assert state["display_3_power"] == "OFF"

        wall.set_point("display_3_on", False)  # first and last address of the table
        wall.set_point("display_1_on", True)
        wall.set_point("display_7_on", True)
        state = await p.wait_for(
            TOPIC, lambda s: inputs(s) == ["ON", "OFF", "OFF", "OFF", "OFF", "OFF", "ON"]
        )
        assert all(state[f"display_{n}_power"] == "OFF" for n in range(1, 8))

    # One block read of the seven inputs per poll, never beyond them.
    spans = {(r.address, r.count) for r in wall.reads if r.function_code == READ_DISCRETE_INPUTS}
    assert spans == {(0, 7)}
    assert wall.writes == []
