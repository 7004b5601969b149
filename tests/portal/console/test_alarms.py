"""Alarms on the operator console: real Mosquitto, the demo room's simulators, the gateway, the alarm
evaluator (``bcc alarms``) and the portal. The console lists an alarm live (server-sent event), shows
it on the page with its banner, and an operator acknowledges it: the evaluator records the operator's
name and note. Bad input is refused with 400."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iot_gateway.alarms.service import running_alarms
from iot_gateway.alarms.store import AlarmStore
from mosquitto import MosquittoProcess
from simulators import SiteSimulator
from tests.iot_gateway.alarms.test_service import WALL_OFFLINE, alarms_config
from tests.support.stack import Console, Stack
from tests.support.wait import eventually


async def test_the_console_lists_an_alarm_live_and_acknowledges_it(
    stack: Stack, mosquitto: MosquittoProcess, room_sim: SiteSimulator, tmp_path: Path
) -> None:
    config = alarms_config(room_sim, mosquitto, tmp_path)
    async with stack.console() as c:

        async def all_online() -> bool:
            availability = (await c.state())["availability"]
            return len(availability) == 6 and set(availability.values()) == {"online"}

        # a bus that connects late at start (a loaded machine) must not leave an alarm behind
        await eventually(all_online, 15, what="every device of the room online")
        async with running_alarms(config):
            await console_alarm_round_trip(c, room_sim)
    history = AlarmStore(config.database_url)
    try:
        last = history.history(WALL_OFFLINE)[-1]
    finally:
        history.close()
    assert (last["event"], last["note"]) == ("acked", "kabel LAN diperiksa")
    assert last["who"].startswith("operator_"), "the signed-in operator, not a shared role"


async def console_alarm_round_trip(c: Console, room_sim: SiteSimulator) -> None:
    """The wall stops answering: its alarm on the event stream and the page; bad input; an ack."""
    page = await c.open()
    assert "Tidak ada alarm aktif yang belum diakui" in page
    async with c.listening():
        room_sim.device("wall").set_fault("no_answer")

        def raised() -> bool:
            return any(
                kind == "alarm"
                and d["alarm"] == WALL_OFFLINE
                and (d["state"] or {}).get("state") == "active_unacked"
                for kind, d in c.events
            )

        await eventually(raised, 15, what="the offline alarm on the console's event stream")
    page = await c.open()
    assert f'data-alarm="{WALL_OFFLINE}"' in page
    assert "1 alarm aktif belum diakui, tertinggi: tinggi: Perangkat tidak terhubung" in page

    async def post(**form: str) -> Any:
        data = {"csrf_token": c.csrf, "alarm": WALL_OFFLINE, **form}
        return await c.http.post("/konsol/alarm", data=data, headers={"Accept": "application/json"})

    assert (await post(action="silence")).status_code == 400
    assert (await post(action="ack", alarm="nope.wall")).status_code == 400
    assert (await post(action="shelve", minutes="60")).status_code == 400  # no reason
    assert (await post(action="shelve", note="kabel", minutes="0")).status_code == 400
    no_csrf = await c.http.post("/konsol/alarm", data={"alarm": WALL_OFFLINE, "action": "ack"})
    assert no_csrf.status_code == 403

    r = await post(action="ack", note="kabel LAN diperiksa")
    assert r.status_code == 202, r.text

    async def acked() -> bool:
        return bool((await c.state())["alarms"][WALL_OFFLINE]["state"] == "active_acked")

    await eventually(acked, 10, what="the acknowledgement back from the evaluator")
    page = await c.open()
    assert "aktif, sudah diakui" in page and "Tidak ada alarm aktif yang belum diakui" in page
