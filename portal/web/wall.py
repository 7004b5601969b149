"""The video wall (``/dinding``): a kiosk page for the command room's seven-display wall.

Read-only by construction: the page has no form, link or button, and its stream has no input. It is
reached with a staff login (any role) or with a revocable kiosk token (``/dinding?kiosk=<token>`` sets
an http-only cookie and redirects, so the token does not stay in the address bar). Admins issue and
revoke tokens at ``/dinding/admin``.

The views are rendered on the server from ``portal/templates/wall/_<view>.html`` and sent as HTML over
server-sent events (``/dinding/events``): report views every ``refresh_s`` from the database, the room
from the operator console's in-memory cache (:class:`portal.services.room.LiveRoom`), and the layout
preset the moment the wall controller's retained state ``bcc/wall`` changes. ``/static/wall.js`` moves
the views into the regions of the preset, reconnects by itself and marks a view "data lama" when its
data is older than ``stale_after_s``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from bcc_common.sse import sse_event
from portal.i18n import translate, translate_n
from portal.reference import Lang
from portal.services.wall import (
    LAYOUTS,
    VIEWS,
    KioskStore,
    WallConfig,
    WallError,
    current_layout,
    jam,
    report_views,
    save_layouts,
    tanggal,
)
from portal.services.wall_room import kiosk_layout, kiosk_wall, room_panel
from portal.web.deps import (
    AdminUser,
    CsrfDep,
    LangDep,
    LoginRequired,
    NowDep,
    lang_of,
    load_staff_session,
    render,
    runtime_from,
)

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/dinding", default_response_class=HTMLResponse)
KIOSK_COOKIE = "bcc_wall"
KEEPALIVE_S = 15.0
ROOM_MIN_INTERVAL_S = 0.5
WALL_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
REPORT_VIEWS = ("feed", "map", "counts", "deadlines")


def wall_config(request: Request) -> WallConfig:
    """The current assignment; picks up an admin's change saved by another worker (file mtime)."""
    return runtime_from(request).wall.current()


def _kiosk(request: Request) -> KioskStore:
    return runtime_from(request).wall.kiosk


def wall_viewer(request: Request) -> str:
    """``staff:<username>`` or ``kiosk:<id>``; anonymous -> login, a bad or revoked kiosk cookie -> 403."""
    user = load_staff_session(request)
    if user is not None:
        return f"staff:{user.username}"
    token = request.cookies.get(KIOSK_COOKIE, "")
    if not token:
        raise LoginRequired()
    found = _kiosk(request).check(token)
    if found is None:
        raise HTTPException(403, "Kiosk token revoked or invalid")
    return f"kiosk:{found.id}"


Viewer = Annotated[str, Depends(wall_viewer)]


# ---- rendering -----------------------------------------------------------------------------------
def _fragment(templates: Jinja2Templates, view: str, context: dict[str, Any], lang: Lang) -> str:
    """One view's HTML in ``lang`` (each wall's own: the stream renders per connection)."""
    texts = {
        "lang": lang,
        "t": lambda key, **fields: translate(key, lang, **fields),
        "tn": lambda key, plural_key, n, **fields: translate_n(key, plural_key, n, lang, **fields),
    }
    return templates.env.get_template(f"wall/_{view}.html").render(**context, **texts)


def _report_context(request: Request, now: datetime, lang: Lang) -> dict[str, Any]:
    config = wall_config(request)
    runtime = runtime_from(request)
    with runtime.sessions() as db:
        views = report_views(db, runtime.reference, now, config.feed_limit, lang)
    return {"v": views}


def _all_fragments(
    request: Request, now: datetime, report_ctx: dict[str, Any] | None, lang: Lang
) -> dict[str, str]:
    runtime = runtime_from(request)
    templates = runtime.templates
    out = {"room": _fragment(templates, "room", room_panel(runtime.room, lang), lang)}
    out["clock"] = _fragment(templates, "clock", {"tanggal": tanggal(now, lang), "jam": jam(now)}, lang)
    if report_ctx is not None:
        for view in REPORT_VIEWS:
            out[view] = _fragment(templates, view, report_ctx, lang)
    return out


# ---- the page and its stream ---------------------------------------------------------------------
@router.get("")
def wall_page(request: Request, lang: LangDep, now: NowDep, kiosk: str = "") -> Response:
    if kiosk:
        if _kiosk(request).check(kiosk) is None:
            raise HTTPException(403, "Kiosk token revoked or invalid")
        response: Response = RedirectResponse("/dinding", status_code=303)
        response.set_cookie(
            KIOSK_COOKIE,
            kiosk,
            max_age=5 * 365 * 86400,
            httponly=True,
            samesite="strict",
            secure=runtime_from(request).settings.cookie_secure,
            path="/dinding",
        )
        return response
    wall_viewer(request)
    config = wall_config(request)
    layout = kiosk_layout(runtime_from(request).room)
    fragments = _all_fragments(request, now, _report_context(request, now, lang), lang)
    context = {
        "config": config,
        "layout": layout,
        "regions": config.layouts[layout],
        "fragments": fragments,
        "layouts_json": json.dumps(config.as_json(), separators=(",", ":")),
        "view_titles": view_titles(lang),
        "wall_text": json.dumps(script_texts(lang), ensure_ascii=False, separators=(",", ":")),
        "room_stale": room_panel(runtime_from(request).room)["stale"],
        "parked": [v for v in VIEWS if not any(v in r.views for r in config.layouts[layout])],
    }
    response = render(request, lang, "wall/index.html", context)
    response.headers["Content-Security-Policy"] = WALL_CSP
    return response


def script_texts(lang: Lang) -> dict[str, Any]:
    """What portal/static/wall.js writes by itself (clock, stale mark, connection), in ``lang``."""
    return {
        "days": [translate(f"weekday_{(i + 6) % 7}", lang) for i in range(7)],  # Sunday first, as JS counts
        "months": [translate(f"month_long_{i}", lang) for i in range(1, 13)],
        "stale": translate("wall_stale", lang),
        "seconds": translate("wall_seconds", lang),
        "minutes": translate("wall_minutes_short", lang),
        "live": translate("wall_live", lang),
        "reconnecting": translate("wall_reconnecting", lang),
    }


def view_titles(lang: Lang) -> dict[str, str]:
    """Each view's heading: the messages ``wall_view_<view>``."""
    return {view: translate(f"wall_view_{view}", lang) for view in VIEWS}


@router.get("/events", include_in_schema=False)  # endless: no schema test may call it
async def events(request: Request, viewer: Viewer) -> StreamingResponse:
    """``layout`` at once and on every change of ``bcc/wall``; ``view`` (HTML of one view) when it changes."""
    runtime = runtime_from(request)
    room = runtime.room
    config = wall_config(request)
    queue = room.subscribe()
    kiosk_cookie = request.cookies.get(KIOSK_COOKIE, "") if viewer.startswith("kiosk:") else ""
    lang = lang_of(request)  # the wall page's (its ?lang= set the cookie this request carries)

    def view_event(view: str, html: str, stale: bool = False) -> str:
        return sse_event("view", {"view": view, "html": html, "stale": stale, "at": time.time()})

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        layout = kiosk_layout(room)
        next_reports = 0.0
        room_dirty = True
        last_room = 0.0
        last_sent = loop.time()
        try:
            yield "retry: 2000\n\n"
            yield sse_event("layout", {"layout": layout})
            while True:
                now_m = loop.time()
                if now_m >= next_reports:
                    if kiosk_cookie and await run_in_threadpool(_kiosk(request).check, kiosk_cookie) is None:
                        yield sse_event("revoked", {})
                        return
                    if wall_config(request) is not config:  # an admin changed the assignment
                        yield sse_event("reload", {})
                        return
                    clock_now = runtime.clock()
                    ctx = await run_in_threadpool(_report_context, request, clock_now, lang)
                    for view, html in _all_fragments(request, clock_now, ctx, lang).items():
                        yield view_event(view, html, view == "room" and room.bridge != "online")
                    next_reports = now_m + config.refresh_s
                    last_room = last_sent = now_m
                    room_dirty = False
                elif room_dirty and now_m - last_room >= ROOM_MIN_INTERVAL_S:
                    ctx_room = room_panel(room, lang)
                    yield view_event(
                        "room",
                        _fragment(runtime.templates, "room", ctx_room, lang),
                        ctx_room["stale"],
                    )
                    last_room = last_sent = now_m
                    room_dirty = False
                elif now_m - last_sent >= KEEPALIVE_S:
                    yield ": keepalive\n\n"
                    last_sent = now_m
                wait = next_reports - now_m
                if room_dirty:
                    wait = min(wait, max(0.0, last_room + ROOM_MIN_INTERVAL_S - now_m))
                try:
                    kind, data = await asyncio.wait_for(queue.get(), max(0.01, wait))
                except TimeoutError:
                    continue
                wall_device = kiosk_wall(room.plan)
                if kind == "state" and wall_device is not None and data.get("device") == wall_device:
                    new = current_layout({wall_device: data.get("state") or {}}, wall_device)
                    if new != layout:
                        layout = new
                        yield sse_event("layout", {"layout": layout})
                        last_sent = loop.time()
                if kind in ("state", "availability", "bridge", "snapshot", "alarm"):
                    room_dirty = True
        finally:
            room.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# ---- admin: kiosk tokens -------------------------------------------------------------------------
def _admin_page(
    request: Request, lang: LangDep, new_token: str = "", error: str = "", status_code: int = 200
) -> Response:
    store = _kiosk(request)
    config = wall_config(request)
    context = {
        "tokens": sorted(store.tokens(), key=lambda t: t.created_at, reverse=True),
        "new_token": new_token,
        "new_url": f"{runtime_from(request).settings.public_url}/dinding?kiosk={new_token}"
        if new_token
        else "",
        "config": config,
        "view_titles": view_titles(lang),
        "views": VIEWS,
        "error": error,
        "customised": runtime_from(request).wall.mtime is not None,
    }
    return render(request, lang, "wall/admin.html", context, status_code=status_code)


@router.get("/admin")
def admin_page(request: Request, lang: LangDep, user: AdminUser) -> Response:
    return _admin_page(request, lang)


@router.post("/admin/token", dependencies=[CsrfDep])
def create_token(
    request: Request,
    lang: LangDep,
    now: NowDep,
    user: AdminUser,
    label: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    if not label.strip():
        raise HTTPException(400, "label required")
    token = _kiosk(request).issue(label, user.username, now)
    return _admin_page(request, lang, new_token=token)


@router.post("/admin/token/{token_id}/cabut", dependencies=[CsrfDep])
def revoke_token(request: Request, token_id: str, now: NowDep, user: AdminUser) -> Response:
    if not _kiosk(request).revoke(token_id[:32], now):
        raise HTTPException(404, "No such active token")
    return RedirectResponse("/dinding/admin", status_code=303)


_FIELD = re.compile(r"^(?P<layout>[a-z0-9_]{1,16})\.(?P<region>\d{1,2})\.(?P<what>width|views)$")


@router.post("/admin/tata-letak", dependencies=[CsrfDep])
async def save_assignment(request: Request, lang: LangDep, user: AdminUser) -> Response:
    """Store the admins' view-to-region assignment (validated like the file); the walls re-flow on reload."""
    form = await request.form()
    layouts: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in form.multi_items():
        m = _FIELD.match(key)
        if m is None or not isinstance(value, str) or m["layout"] not in LAYOUTS:
            continue
        region = layouts.setdefault(m["layout"], {}).setdefault(int(m["region"]), {})
        if m["what"] == "width":
            region["width"] = value.strip()[:8]
        else:
            region["views"] = [v.strip() for v in value.split(",")[: len(VIEWS) + 1] if v.strip()]
    raw = {name: [regions[i] for i in sorted(regions)] for name, regions in layouts.items()}
    config = wall_config(request)
    try:
        saved = await run_in_threadpool(
            save_layouts, config, raw, runtime_from(request).settings.media_dir, lang
        )
    except WallError as err:
        return _admin_page(request, lang, error=str(err), status_code=400)
    runtime_from(request).wall.saved(saved)
    log.info("wall_layouts_saved", user=user.username)
    return RedirectResponse("/dinding/admin#h-layouts", status_code=303)


@router.post("/admin/tata-letak/bawaan", dependencies=[CsrfDep])
def reset_assignment(request: Request, user: AdminUser) -> Response:
    """Back to ``portal/data/wall_layouts.yaml``."""
    runtime_from(request).wall.reset()
    log.info("wall_layouts_reset", user=user.username)
    return RedirectResponse("/dinding/admin#h-layouts", status_code=303)
