"""The console's alarms in headless Chromium against the whole stack (Mosquitto, the room's simulators,
the gateway, the alarm evaluator, the portal): the wall stops answering, its alarm appears in the list
and the banner without a reload, axe finds nothing serious with an alarm shown, and the operator
acknowledges it with a note from the page. Screenshots go to ``artifacts/console/`` (git-ignored)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from iot_gateway.alarms.service import running_alarms
from iot_gateway.alarms.store import AlarmStore
from mosquitto import MosquittoProcess
from simulators import SiteSimulator
from tests.iot_gateway.alarms.test_service import WALL_OFFLINE, alarms_config
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import chromium_page
from tests.support.console_page import log_in, text_of, wait_text
from tests.support.paths import ROOT
from tests.support.portal_app import add_user
from tests.support.stack import Stack

ARTIFACTS = ROOT / "artifacts" / "console"
ROW = f'tr.alarm[data-alarm="{WALL_OFFLINE}"]'
ACK = f"{ROW} form.alarmact:has(input[name=action][value=ack])"


async def test_an_alarm_appears_live_and_is_acknowledged_in_chromium(
    stack: Stack, mosquitto: MosquittoProcess, room_sim: SiteSimulator, tmp_path: Path
) -> None:
    axe = await asyncio.to_thread(axe_source)
    operator = add_user(stack.app, "operator")
    config = alarms_config(room_sim, mosquitto, tmp_path)
    async with chromium_page(tmp_path / "profile") as page:
        await log_in(page, stack.url, stack.app, operator)
        await page.goto(f"{stack.url}/konsol")
        await wait_text(page, "#live", "langsung")
        for device in ("lights_a", "lights_b", "env_front", "env_back", "meter_main", "wall"):
            await wait_text(page, f'.avail[data-avail="{device}"]', "tersedia", timeout=15)
        async with running_alarms(config):
            await wait_text(page, "#alarmbanner", "Tidak ada alarm aktif yang belum diakui")
            room_sim.device("wall").set_fault("no_answer")
            await wait_text(page, ROW, "aktif, belum diakui", timeout=15)
            await wait_text(page, "#alarmbanner", "1 alarm aktif belum diakui, tertinggi: tinggi")
            await page.screenshot(ARTIFACTS / "10-alarm.png")
            assert await serious_violations(page, axe) == []

            await page.fill(f"{ACK} input[name=note]", "kabel LAN diperiksa")
            await page.click_and_wait(f"{ACK} button")
            await wait_text(page, ROW, "aktif, sudah diakui")
            assert await text_of(page, "#alarmbanner") == "Tidak ada alarm aktif yang belum diakui"
            assert not await page.eval(f"!!document.querySelector({json.dumps(ACK)})"), "nothing left to ack"
            await page.screenshot(ARTIFACTS / "11-alarm-acked.png")
    store = AlarmStore(config.database_url)
    try:
        last = store.history(WALL_OFFLINE)[-1]
    finally:
        store.close()
    assert (last["event"], last["who"], last["note"]) == ("acked", operator.username, "kabel LAN diperiksa")
