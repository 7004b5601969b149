"""The wall's room view follows the alarms live: the whole stack with the alarm evaluator; the wall
controller stops answering and the room view on the wall's event stream lists its offline alarm."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx

from iot_gateway.alarms.service import running_alarms
from mosquitto import MosquittoProcess
from simulators import SiteSimulator
from tests.iot_gateway.alarms.test_service import alarms_config
from tests.support.portal_app import add_user
from tests.support.stack import Stack, login_async
from tests.support.wait import eventually


async def test_the_room_view_lists_a_new_alarm_live(
    stack: Stack, mosquitto: MosquittoProcess, room_sim: SiteSimulator, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        await login_async(http, add_user(stack.app, "viewer"), stack.app)
        rooms: list[str] = []

        async def pump() -> None:
            async with http.stream("GET", "/dinding/events") as r:
                kind = ""
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "view":
                        data: dict[str, Any] = json.loads(line[6:])
                        if data.get("view") == "room":
                            rooms.append(str(data.get("html", "")))

        task = asyncio.create_task(pump())
        try:
            async with running_alarms(alarms_config(room_sim, mosquitto, tmp_path)):
                await eventually(lambda: rooms, 10, what="the room view on the wall's stream")
                room_sim.device("wall").set_fault("no_answer")
                await eventually(
                    lambda: any("TINGGI: Perangkat tidak terhubung" in html for html in rooms),
                    20,
                    what="the wall controller's offline alarm in the room view",
                )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
