"""Scenes and schedules of the operator console, defined as data (``portal/data/scenes.yaml``).

A scene is a list of console actions run in order; each step waits for the device's confirmation (or the
failure) of its commands before the next starts, and every step is reported on the console's event stream
and in the command audit. A schedule runs a scene at a time of day (WIB, every day). With several portal
workers each one checks the schedules, and the unique key (schedule, due time) of ``schedule_runs``
lets exactly one of them claim a due time: the others get an integrity error and skip it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bcc_common.ident import Ident
from portal.models import ScheduleRun, User
from portal.services.deadlines import WIB
from portal.services.room import CommandSender, LiveRoom, RoomPlan, build_commands, new_transaction, send

log = structlog.get_logger(__name__)
Name = Ident  # a scene name


class SceneLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    en: str


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    action: str
    target: str = ""
    value: str


class Scene(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    label: SceneLabel
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    label: SceneLabel
    at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    scene: Name

    def due_before(self, now: datetime) -> datetime:
        """The latest time of day ``at`` (WIB) not after ``now``."""
        hh, mm = (int(x) for x in self.at.split(":"))
        local = now.astimezone(WIB)
        due = datetime.combine(local.date(), time(hh, mm), tzinfo=WIB)
        return due if due <= local else due - timedelta(days=1)


class SceneBook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    scenes: dict[Name, Scene] = Field(default_factory=dict)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_scenes(self) -> SceneBook:
        for name, sched in self.schedules.items():
            if sched.scene not in self.scenes:
                raise ValueError(f"schedule {name}: unknown scene {sched.scene}")
        return self

    def check(self, plan: RoomPlan) -> None:
        """Every step must be an action the room allows (raises CommandRefused with the scene named)."""
        for name, scene in self.scenes.items():
            for i, step in enumerate(scene.steps, 1):
                try:
                    build_commands(plan, step.action, step.target, step.value)
                except ValueError as err:
                    raise ValueError(f"scene {name} step {i}: {err}") from err


def load_scenes(path: Path, plan: RoomPlan) -> SceneBook:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    book = SceneBook.model_validate(raw)
    book.check(plan)
    return book


async def run_scene(
    room: LiveRoom,
    sender: CommandSender | None,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    name: str,
    scene: Scene,
    user: User | None,
    username: str = "",
) -> dict[str, Any]:
    """Run the steps in order, each after the previous one's commands were answered; report each step."""
    steps: list[dict[str, Any]] = []
    total = len(scene.steps)
    for i, step in enumerate(scene.steps, 1):
        results: list[dict[str, str]] = []
        for cmd in build_commands(room.plan, step.action, step.target, step.value):
            cmd = dataclasses.replace(cmd, action=f"scene {name} {i}/{total}: {cmd.action}")
            txn = new_transaction()
            done = room.waiter(txn)

            def publish(cmd: Any = cmd, txn: str = txn) -> None:
                with sessions() as db:
                    send(room, sender, db, user, cmd, clock(), username=username, transaction=txn)

            await asyncio.to_thread(publish)
            try:
                status = await asyncio.wait_for(done, room.response_timeout_s + 5)
            except TimeoutError:
                status = "timeout"
            results.append({"transaction": txn, "device": cmd.device, "status": status})
        ok = all(r["status"] == "ok" for r in results)
        report = {"scene": name, "step": i, "of": total, "ok": ok, "commands": results}
        steps.append(report)
        room.emit("scene", report)
    summary = {"scene": name, "done": True, "ok": all(s["ok"] for s in steps), "steps": steps}
    room.scene_results[name] = {**summary, "at": clock().isoformat()}
    room.emit("scene", summary)
    return summary


async def run_schedules(
    book: SceneBook,
    room: LiveRoom,
    sender: CommandSender | None,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    check_s: float,
    grace_s: float,
) -> None:
    """Every ``check_s``: claim and run each schedule whose due time passed less than ``grace_s`` ago."""
    worker = f"worker-{secrets.token_hex(4)}"
    while True:
        now = clock()
        for name, sched in book.schedules.items():
            due = sched.due_before(now)
            if (now - due).total_seconds() > grace_s:
                continue
            run_id = await asyncio.to_thread(_claim, sessions, name, sched.scene, due, worker, now)
            if run_id is None:
                continue
            log.info("console_schedule_run", schedule=name, due=due.isoformat(), worker=worker)
            try:
                summary = await run_scene(
                    room,
                    sender,
                    sessions,
                    clock,
                    sched.scene,
                    book.scenes[sched.scene],
                    None,
                    f"jadwal:{name}",
                )
                result = "ok" if summary["ok"] else "failed"
                detail = "; ".join(
                    f"{s['step']}/{s['of']} " + ",".join(c["status"] for c in s["commands"])
                    for s in summary["steps"]
                )
            except Exception as err:
                log.warning("console_schedule_failed", schedule=name, error=repr(err))
                result, detail = "failed", repr(err)
            await asyncio.to_thread(_complete, sessions, run_id, result, detail, clock())
        await asyncio.sleep(check_s)


def _claim(
    sessions: sessionmaker[Session], name: str, scene: str, due: datetime, worker: str, now: datetime
) -> int | None:
    with sessions() as db:
        row = ScheduleRun(
            schedule=name, due_at=due, scene=scene, worker=worker, started_at=now, result="running", detail=""
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            return None  # another worker has it
        return row.id


def _complete(sessions: sessionmaker[Session], run_id: int, result: str, detail: str, at: datetime) -> None:
    with sessions() as db:
        row = db.get(ScheduleRun, run_id)
        if row is not None:
            row.result, row.detail, row.finished_at = result, detail, at
            db.commit()


def last_runs(db: Session) -> dict[str, ScheduleRun]:
    """The latest run of every schedule."""
    latest: dict[str, ScheduleRun] = {}
    for row in db.scalars(select(ScheduleRun).order_by(ScheduleRun.due_at, ScheduleRun.id)):
        latest[row.schedule] = row
    return latest
