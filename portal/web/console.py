"""The operator console (``/konsol``): the room live, its controls, and the command audit.

Only the ``operator`` and ``admin`` roles reach any of it. The page renders completely without
JavaScript; ``/static/console.js`` keeps it live from the server-sent events of ``/konsol/events``
and sends the control forms in the background. A command is never shown as done before the gateway's
response arrives on ``bcc/<device>/response`` (docs/mqtt.md): the POST only returns its transaction ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.responses import Response, StreamingResponse

from bcc_common.sse import sse_event
from bcc_contract.alarms import ACTIONS as ALARM_ACTIONS
from bcc_contract.commands import RESULT_STATUSES
from portal.i18n import catalogue, translate
from portal.models import User
from portal.reference import Lang
from portal.services import audit, scenes
from portal.services.room import (
    CommandRefused,
    LiveRoom,
    age_seconds,
    alarm_rows,
    build_commands,
    new_transaction,
    send,
)
from portal.services.scenes import run_scene
from portal.web.deps import CsrfDep, LangDep, NowDep, RoleGuard, RuntimeDep, SessionDep, render, runtime_from

router = APIRouter(prefix="/konsol", default_response_class=HTMLResponse)
ConsoleUser = Annotated[User, Depends(RoleGuard("admin", "operator"))]
KEEPALIVE_S = 15.0
CSV_LIMIT = 100_000
_DAY = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# The console is the one page with JavaScript: our own script, talking to our own origin only.
CONSOLE_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _named(lang: Lang, keys: dict[str, str]) -> dict[str, str]:
    """``{name: message key}`` -> ``{name: text in lang}``."""
    return {name: translate(key, lang) for name, key in keys.items()}


# The message keys of the names the console shows: a command's result (the audit, the console's table),
# an alarm's state and severity, a device's availability.
NAME_KEYS: dict[str, dict[str, str]] = {
    "status": {
        "pending": "console_waiting_for_the_device",
        "ok": "console_confirmed_read_back",
        "failed_readback": "console_failed_the_device_reported",
        "timeout": "console_failed_timed_out",
        "device_unavailable": "console_failed_device_unavailable",
        "rejected": "console_rejected",
        "stale": "console_expired",
    },
    "alarm_state": {
        "active_unacked": "console_active_not_acknowledged",
        "active_acked": "console_active_acknowledged",
        "cleared_unacked": "console_back_to_normal_not",
        "shelved": "console_shelved",
    },
    "severity": {
        "critical": "console_critical",
        "high": "console_high",
        "medium": "console_medium",
        "low": "console_low",
    },
    "avail": {
        "online": "console_available",
        "offline": "console_unavailable",
        "unknown": "console_not_known_yet",
    },
}


def status_text(lang: Lang) -> dict[str, str]:
    return _named(lang, NAME_KEYS["status"])


def alarm_state_text(lang: Lang) -> dict[str, str]:
    return _named(lang, NAME_KEYS["alarm_state"])


def severity_text(lang: Lang) -> dict[str, str]:
    return _named(lang, NAME_KEYS["severity"])


def avail_text(lang: Lang) -> dict[str, str]:
    return _named(lang, NAME_KEYS["avail"])


def script_texts(lang: Lang) -> dict[str, Any]:
    """What portal/static/console.js writes by itself after the page has loaded, in ``lang``; texts with a
    count come in the forms for one and for more (``{n}`` filled in by the script)."""
    cat = catalogue(lang)

    def forms(key: str) -> tuple[str, str]:
        return cat.ngettext(key, f"{key}_plural", 1), cat.ngettext(key, f"{key}_plural", 2)

    steps, unacked = forms("n_steps"), forms("console_unacked")
    keys = ("age_seconds", "age_minutes", "age_hours", "scene_ok", "scene_failed", "console_no_unacked")
    texts = {key: translate(key, lang) for key in keys}
    return {
        "lang": lang,
        "status": status_text(lang),
        "avail": avail_text(lang),
        "alarm_state": alarm_state_text(lang),
        "severity": severity_text(lang),
        **texts,
        "no_unacked": texts["console_no_unacked"],
        "steps_one": steps[0],
        "steps_other": steps[1],
        "unacked_one": unacked[0],
        "unacked_other": unacked[1],
        "you": translate("console_you", lang),
        "step_of": translate("console_step_step_of", lang),
        "scene_started": translate("console_started_waiting_for_step", lang),
        "note": translate("console_note", lang),
        "ack": translate("console_acknowledge", lang),
        "reason": translate("f_reason", lang),
        "minutes": translate("console_minutes", lang),
        "shelve": translate("console_shelve", lang),
        "unshelve": translate("console_unshelve", lang),
        "no_alarms": translate("console_no_alarms", lang),
    }


STATUS_TEXT = status_text("id")  # the default language's (tests, the CSV export)
# The evaluator has the final word (max_shelve_s of the rules file, docs/alarms.md); the console asks
# for at most a day.
MAX_SHELVE_MIN = 24 * 60


async def get_room(request: Request) -> LiveRoom:
    return runtime_from(request).room


RoomDep = Annotated[LiveRoom, Depends(get_room)]


def _age_text(seconds: float | None, lang: Lang) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return translate("age_seconds", lang, n=f"{seconds:.0f}")
    if seconds < 3600:
        return translate("age_minutes", lang, n=f"{seconds / 60:.0f}")
    return translate("age_hours", lang, n=f"{seconds / 3600:.1f}")


@router.get("")
def console_page(
    request: Request, lang: LangDep, db: SessionDep, room: RoomDep, user: ConsoleUser
) -> Response:
    snapshot = room.snapshot()
    now = datetime.now(UTC)
    ages = {d: _age_text(age_seconds(s, now), lang) for d, s in snapshot["states"].items()}
    context = {
        "plan": room.plan,
        "scenes": runtime_from(request).scenes,
        "scene_results": room.scene_results,
        "schedule_runs": scenes.last_runs(db),
        "snap": snapshot,
        "ages": ages,
        "recent": audit.recent(db),
        "status_text": status_text(lang),
        "avail_text": avail_text(lang),
        "connected": runtime_from(request).connections.commands is not None,
        "alarms": alarm_rows(snapshot["alarms"]),
        "alarm_state_text": alarm_state_text(lang),
        "severity_text": severity_text(lang),
        "script_text": json.dumps(script_texts(lang), ensure_ascii=False, separators=(",", ":")),
        "max_shelve_min": MAX_SHELVE_MIN,
    }
    response = render(request, lang, "console/index.html", context)
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


@router.get("/state.json", response_class=JSONResponse)
def state_json(room: RoomDep, user: ConsoleUser) -> JSONResponse:
    return JSONResponse(room.snapshot(), headers={"Cache-Control": "no-store"})


@router.get("/events", include_in_schema=False)  # endless: no schema test may call it
async def events(request: Request, room: RoomDep, user: ConsoleUser) -> StreamingResponse:
    """Server-sent events: a ``snapshot`` first, then ``state``, ``availability``, ``bridge``, ``command``."""
    queue = room.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            yield sse_event("snapshot", room.snapshot())
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield sse_event(kind, data)
        finally:
            room.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/perintah",
    dependencies=[CsrfDep],
    responses={202: {"content": {"application/json": {}}}, 303: {"description": "back to the console"}},
)
def command(
    request: Request,
    db: SessionDep,
    now: NowDep,
    room: RoomDep,
    user: ConsoleUser,
    action: Annotated[str, Form(max_length=32)] = "",
    target: Annotated[str, Form(max_length=100)] = "",
    value: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Publish the command(s) of one control and return at once with their transaction ids (202)."""
    try:
        commands = build_commands(room.plan, action, target, value)
    except CommandRefused as err:
        raise HTTPException(400, str(err)) from err
    sender = runtime_from(request).connections.commands
    sent: list[dict[str, str]] = []
    for cmd in commands:
        txn = send(room, sender, db, user, cmd, now)
        sent.append({"transaction": txn, "device": cmd.device, "action": cmd.action})
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"commands": sent}, status_code=202)
    return RedirectResponse("/konsol#perintah", status_code=303)


@router.post(
    "/alarm",
    dependencies=[CsrfDep],
    responses={202: {"content": {"application/json": {}}}, 303: {"description": "back to the console"}},
)
def alarm_action(
    request: Request,
    room: RoomDep,
    user: ConsoleUser,
    alarm: Annotated[str, Form(max_length=120)] = "",
    action: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    minutes: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    """Acknowledge, shelve or unshelve an alarm as the signed-in operator (published on
    ``bcc/alarms/command``; the evaluator records who and when, and its new state arrives live)."""
    if alarm not in room.snapshot()["alarms"]:
        raise HTTPException(400, "unknown alarm")
    if action not in ALARM_ACTIONS:
        raise HTTPException(400, f"action must be one of {', '.join(ALARM_ACTIONS)}")
    txn = new_transaction()
    payload: dict[str, object] = {
        "alarm": alarm,
        "action": action,
        "by": user.username,
        "note": note.strip(),
        "transaction": txn,
    }
    if action == "shelve":
        if not note.strip():
            raise HTTPException(400, "shelving needs a reason")
        if not minutes.isdigit() or not 1 <= int(minutes) <= MAX_SHELVE_MIN:
            raise HTTPException(400, f"shelve for 1 to {MAX_SHELVE_MIN} minutes")
        payload["duration_s"] = int(minutes) * 60
    sender = runtime_from(request).connections.commands
    if sender is None or not sender.publish_alarm_command(payload):
        raise HTTPException(503, "the portal is not connected to the broker")
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"transaction": txn, "alarm": alarm, "action": action}, status_code=202)
    return RedirectResponse("/konsol#alarm", status_code=303)


@router.post(
    "/adegan",
    dependencies=[CsrfDep],
    responses={202: {"content": {"application/json": {}}}, 303: {"description": "back to the console"}},
)
async def scene(
    request: Request,
    runtime: RuntimeDep,
    room: RoomDep,
    user: ConsoleUser,
    name: Annotated[str, Form(max_length=48)] = "",
) -> Response:
    """Start a scene in the background; its steps are reported on the event stream and in the audit."""
    book = runtime.scenes
    if name not in book.scenes:
        raise HTTPException(400, "unknown scene")
    tasks = runtime.scene_tasks
    run = run_scene(
        room,
        runtime.connections.commands,
        runtime.sessions,
        runtime.clock,
        name,
        book.scenes[name],
        user,
    )
    task = asyncio.create_task(run, name=f"scene-{name}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"scene": name, "steps": len(book.scenes[name].steps)}, status_code=202)
    return RedirectResponse("/konsol#perintah", status_code=303)


@router.get("/perintah/{transaction}", response_class=JSONResponse)
def command_status(transaction: str, db: SessionDep, user: ConsoleUser) -> JSONResponse:
    row = audit.get(db, transaction[:128])
    if row is None:
        raise HTTPException(404, "No such command")
    return JSONResponse(
        {
            "transaction": row.transaction,
            "device": row.device,
            "action": row.action,
            "status": row.status,
            "error": row.error,
            "readback": json.loads(row.readback) if row.readback else None,
        },
        headers={"Cache-Control": "no-store"},
    )


def _filter(
    username: str, device: str, status: str, since: str, until: str, page: int = 1
) -> audit.AuditFilter:
    def day(text: str) -> datetime | None:
        # ASCII digits only (strptime's \d takes any script's digits); not a date: no bound, as before
        if _DAY.match(text):
            with contextlib.suppress(ValueError):
                return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        return None

    end = day(until)
    return audit.AuditFilter(
        username=username[:64],
        device=device[:48],
        status=status if status in (*RESULT_STATUSES, "pending") else "",
        since=day(since),
        # "until 9999-12-31" includes that whole day, which has no next day to stop at: no upper bound
        until=end + timedelta(days=1) if end and end.date() < date.max else None,
        page=max(1, min(page, 100_000)),
    )


@router.get("/audit")
def audit_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    room: RoomDep,
    user: ConsoleUser,
    username: str = "",
    device: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> Response:
    flt = _filter(username, device, status, since, until, page)
    rows, total = audit.query(db, flt)
    context = {
        "rows": rows,
        "total": total,
        "filter": flt,
        "raw": {"username": username, "device": device, "status": status, "since": since, "until": until},
        "devices": [d for d, _ in room.plan.devices],
        "statuses": ("pending", *RESULT_STATUSES),
        "status_text": status_text(lang),
        "pages": (total + audit.PAGE_SIZE - 1) // audit.PAGE_SIZE,
    }
    return render(request, lang, "console/audit.html", context)


@router.get("/audit.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def audit_csv(
    db: SessionDep,
    user: ConsoleUser,
    username: str = "",
    device: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    rows, _total = audit.query(db, _filter(username, device, status, since, until), limit=CSV_LIMIT)
    return Response(
        audit.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="bcc-command-audit.csv"',
            "Cache-Control": "no-store",
        },
    )
