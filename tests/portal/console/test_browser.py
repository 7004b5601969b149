"""The console in headless Chromium (phone-sized) against the real stack: Mosquitto, the room's
simulators, the gateway and the portal. A click on a light switch changes the simulator's coil and the
page shows "pending" and then the confirmed state; a stuck relay shows the failed read-back; a dead
device shows unavailable; a change made at the device appears without reloading. Screenshots go to
``artifacts/console/`` (git-ignored), kept after the run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from portal.web.console import STATUS_TEXT
from tests.support.axe import axe_source, serious_violations
from tests.support.cdp import chromium_page
from tests.support.console_page import circuit, click_switch, log_in, text_of, wait_text
from tests.support.paths import ROOT
from tests.support.portal_app import add_user
from tests.support.stack import Stack

ARTIFACTS = ROOT / "artifacts" / "console"
RECORD = """(() => {
  window.__seen = [];
  const obs = new MutationObserver(() => document.querySelectorAll('output.cmdstatus').forEach(o => {
    const last = window.__seen[window.__seen.length - 1];
    const key = o.dataset.for + '|' + o.textContent;
    if (o.textContent && last !== key) { window.__seen.push(key); }
  }));
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
  return true;
})()"""


async def test_console_in_chromium(stack: Stack, tmp_path: Path) -> None:
    sim: Any = stack.sim
    axe = await asyncio.to_thread(axe_source)
    operator = add_user(stack.app, "operator")
    async with chromium_page(tmp_path / "profile") as page:
        assert operator.totp_secret is not None  # operators log in with a second factor
        await log_in(page, stack.url, stack.app, operator)
        await page.goto(f"{stack.url}/konsol")
        await wait_text(page, "#live", "langsung")
        await wait_text(page, f"{circuit('lights_a', 'relay_3')} .v", "OFF")
        await wait_text(page, '.avail[data-avail="lights_b"]', "tersedia")
        await page.screenshot(ARTIFACTS / "01-console.png")
        assert await serious_violations(page, axe) == []

        # Click: pending first, then confirmed by the device; the simulator's coil really switched.
        await page.eval(RECORD)
        out = f"{circuit('lights_a', 'relay_3')} output.cmdstatus"
        await click_switch(page, "lights_a", "relay_3", "ON")
        await wait_text(page, out, "terkonfirmasi")
        assert sim.device("lights_a").get_point("relay_3") is True
        assert await text_of(page, f"{circuit('lights_a', 'relay_3')} .v") == "ON"
        seen = [s for s in await page.eval("window.__seen") if s.startswith("lights_a.relay_3|")]
        assert seen == [
            "lights_a.relay_3|menunggu konfirmasi perangkat",
            "lights_a.relay_3|terkonfirmasi (dibaca ulang)",
        ], seen
        await page.screenshot(ARTIFACTS / "02-confirmed.png")

        # By keyboard: focus the switch of circuit 5 and press Enter (a native button in a form).
        sel5 = f"{circuit('lights_a', 'relay_5')} form.cmd input[name=value][value=ON]"
        await page.eval(
            f"document.querySelector({json.dumps(sel5)}).closest('form').querySelector('button').focus()"
        )
        for kind in ("keyDown", "keyUp"):
            await page.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                text="\r",
            )
        await wait_text(page, f"{circuit('lights_a', 'relay_5')} output.cmdstatus", "terkonfirmasi")
        assert sim.device("lights_a").get_point("relay_5") is True
        assert await page.eval("getComputedStyle(document.activeElement).outlineStyle") != "none"

        # A change made at the device (not through the console) appears live, without a reload.
        await sim.device("lights_a").set_point("relay_8", True)
        await wait_text(page, f"{circuit('lights_a', 'relay_8')} .v", "ON")

        # A scene from the console: each step reported, then the summary.
        await page.eval(
            "document.querySelector('form.scene input[value=briefing]').form.querySelector('button').click()"
        )
        await wait_text(page, 'output.scenestatus[data-scene="briefing"]', "berhasil (3 langkah)", timeout=20)
        assert sim.device("wall").get_point("layout") == "split_4"
        await wait_text(page, '.v[data-device="wall"][data-point="layout"]', "split_4")

        # Stuck relay: the device reports the old value; the page says so and keeps showing OFF.
        sim.device("lights_b").set_fault("stuck")
        out_b = f"{circuit('lights_b', 'relay_1')} output.cmdstatus"
        await click_switch(page, "lights_b", "relay_1", "ON")
        await wait_text(page, out_b, "gagal: perangkat melaporkan nilai lain")
        assert await text_of(page, f"{circuit('lights_b', 'relay_1')} .v") == "OFF"
        await page.screenshot(ARTIFACTS / "03-failed-readback.png")

        # Dead device: shown unavailable live, and a command to it fails at once.
        sim.device("lights_b").set_fault("no_answer")
        await wait_text(page, '.avail[data-avail="lights_b"]', "tidak tersedia", timeout=15)
        out_b2 = f"{circuit('lights_b', 'relay_2')} output.cmdstatus"
        await click_switch(page, "lights_b", "relay_2", "ON")
        await wait_text(page, out_b2, "gagal: perangkat tidak tersedia")
        await page.screenshot(ARTIFACTS / "04-device-unavailable.png")

        # The audit lists every command with its result.
        await page.goto(f"{stack.url}/konsol/audit")
        body = await page.eval("document.body.innerText")
        assert body.count("console-") == 7  # four single commands and the scene's three
        for status in ("ok", "failed_readback", "device_unavailable"):
            assert STATUS_TEXT[status] in body  # by its name, never the key
        await page.screenshot(ARTIFACTS / "05-audit.png")

        # A point the meter reports as NaN is null in its state: a dash, live and after a reload.
        total = '.v[data-device="meter_main"][data-point="power_total"]'
        await page.goto(f"{stack.url}/konsol")
        await wait_text(page, total, " W")
        sim.device("meter_main").set_registers("input_register", 52, [0x7FC0, 0])  # power_total: NaN
        await wait_text(page, total, "\u2014")
        assert await text_of(page, total) == "\u2014"
        await page.goto(f"{stack.url}/konsol")
        await wait_text(page, "#live", "langsung")
        assert await text_of(page, total) == "\u2014"
    async with stack.console() as c:  # the page as served, before any script runs
        html = await c.open()
    assert 'data-point="power_total" data-unit="W">\u2014</span>' in html
