"""Scenes (data: portal/data/scenes.yaml) run end to end with every step confirmed, and a schedule fires
exactly once with two portal workers sharing the database and the broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import select

from mosquitto import MosquittoProcess
from portal.config import DEFAULT_SITE_FILE, PortalMqttSettings
from portal.main import create_app
from portal.models import CommandAudit, ScheduleRun
from portal.runtime import runtime_of
from portal.services.deadlines import WIB
from portal.services.room import load_plan
from portal.services.scenes import load_scenes
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, running_gateway
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, add_user, make_settings
from tests.support.stack import Stack, login_async
from tests.support.wait import eventually

SCENES = ROOT / "portal" / "data" / "scenes.yaml"


def test_shipped_scenes_are_valid_for_the_demo_room(tmp_path: Path) -> None:
    plan = load_plan(DEFAULT_SITE_FILE)
    book = load_scenes(SCENES, plan)
    assert {"briefing", "night"} <= set(book.scenes)
    assert book.schedules["lights_off_2200"].at == "22:00"
    due = book.schedules["lights_off_2200"].due_before(datetime(2026, 11, 2, 14, 59, tzinfo=UTC))  # 21:59 WIB
    assert due == datetime(2026, 11, 1, 22, 0, tzinfo=WIB)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "scenes": {
                    "x": {
                        "label": {"id": "x", "en": "x"},
                        "steps": [{"action": "layout", "value": "split_9"}],
                    }
                }
            }
        )
    )
    with pytest.raises(ValueError, match="scene x step 1"):
        load_scenes(bad, plan)
    bad.write_text(
        yaml.safe_dump(
            {"schedules": {"s": {"label": {"id": "s", "en": "s"}, "at": "22:00", "scene": "nope"}}}
        )
    )
    with pytest.raises(ValueError, match="unknown scene"):
        load_scenes(bad, plan)


async def test_briefing_scene_end_to_end(stack: Stack) -> None:
    sim = stack.sim
    assert sim is not None
    async with stack.console("operator") as c:
        await eventually(lambda: _ready(c.app))
        await c.open()
        async with c.listening():
            r = await c.http.post(
                "/konsol/adegan",
                data={"csrf_token": c.csrf, "name": "briefing"},
                headers={"Accept": "application/json"},
            )
            assert r.status_code == 202 and r.json() == {"scene": "briefing", "steps": 3}
            await eventually(lambda: any(k == "scene" and d.get("done") for k, d in c.events), timeout=20)
            reports = [d for k, d in c.events if k == "scene"]
        assert [(d.get("step"), d["ok"]) for d in reports] == [(1, True), (2, True), (3, True), (None, True)]
        assert all(cmd["status"] == "ok" for d in reports[:3] for cmd in d["commands"])
        assert sim.device("wall").get_point("layout") == "split_4"
        assert all(sim.device("wall").get_point(f"display_{n}_power") for n in range(1, 8))
        assert all(sim.device("lights_a").get_point(f"relay_{i}") for i in range(1, 9))
        assert not any(sim.device("lights_b").get_point(f"relay_{i}") for i in range(1, 9))
        with runtime_of(stack.app).sessions() as db:
            rows = list(db.scalars(select(CommandAudit).order_by(CommandAudit.id)))
        assert [r.action.split(":")[0] for r in rows] == [f"scene briefing {i}/3" for i in (1, 2, 3)]
        assert [r.status for r in rows] == ["ok"] * 3
        # Each step starts only after the previous one was confirmed.
        for before, after in itertools.pairwise(rows):
            assert before.finished_at is not None and before.finished_at <= after.at
        assert "terakhir: berhasil (3 langkah)" in (await c.http.get("/konsol")).text
        r = await c.http.post("/konsol/adegan", data={"csrf_token": c.csrf, "name": "nope"})
        assert r.status_code == 400


def _ready(app: FastAPI) -> bool:
    snap = runtime_of(app).room.snapshot()
    return all(snap["availability"].get(d) == "online" for d in ("wall", "lights_a", "lights_b"))


async def test_schedule_fires_once_with_two_workers(
    tmp_path: Path, sqlite_template: Path, mosquitto: MosquittoProcess, room_sim: SiteSimulator
) -> None:
    now_wib = datetime.now(UTC).astimezone(WIB)
    book = yaml.safe_load(SCENES.read_text(encoding="utf-8"))
    book["schedules"] = {
        "now": {"label": {"id": "sekarang", "en": "now"}, "at": now_wib.strftime("%H:%M"), "scene": "night"}
    }
    scenes_file = tmp_path / "scenes.yaml"
    scenes_file.write_text(yaml.safe_dump(book), encoding="utf-8")
    db = tmp_path / "portal.db"
    shutil.copy(sqlite_template, db)
    for i in (1, 5):
        await room_sim.device("lights_a").set_point(f"relay_{i}", True)
    await room_sim.device("wall").set_point("display_2_power", True)

    def worker() -> FastAPI:
        mqtt = PortalMqttSettings(
            host=mosquitto.host, port=mosquitto.port, password=mosquitto.password("portal")
        )
        settings = make_settings(
            f"sqlite:///{db}", tmp_path, mqtt=mqtt, scenes_file=scenes_file, schedule_check_s=0.2
        )
        return create_app(settings)

    apps = [worker(), worker()]
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with running_gateway(cfg):
        await eventually(lambda: room_sim.device("lights_a").get_point("relay_1") is True)
        with contextlib.ExitStack() as servers:
            urls = [servers.enter_context(LiveServer(app)).url for app in apps]

            def runs() -> list[ScheduleRun]:
                with runtime_of(apps[0]).sessions() as s:
                    return list(s.scalars(select(ScheduleRun)))

            await eventually(lambda: [r for r in runs() if r.result != "running"], timeout=20)
            await asyncio.sleep(1.0)  # the measurement window: five more checks by each worker, still one run
            [run] = runs()
            assert run.schedule == "now" and run.result == "ok", (run.result, run.detail)
            with runtime_of(apps[1]).sessions() as s:
                rows = list(s.scalars(select(CommandAudit)))
            assert sorted(r.device for r in rows) == ["lights_a", "lights_b", "wall"]
            assert {r.username for r in rows} == {"jadwal:now"} and {r.status for r in rows} == {"ok"}
            assert room_sim.device("lights_a").get_point("relay_1") is False
            assert room_sim.device("wall").get_point("display_2_power") is False
            # Both workers show the schedule's last result (it is in the shared database).
            for app, url in zip(apps, urls, strict=True):
                async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                    await login_async(http, add_user(app, "operator"), app)
                    page = (await http.get("/konsol")).text
                    assert '<td class="result ok">' in page and ": ok (1/2 ok,ok; 2/2 ok)" in page
