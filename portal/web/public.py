"""Public pages: home, the report form with similar-report suggestions, status by code, the public list."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response

from portal.errors import InvalidInput, NotFound, TransitionRefused
from portal.models import FEEDBACKS, STATUSES, Report
from portal.reference import Lang
from portal.services import deadlines, reports
from portal.services.photos import NAME_RE
from portal.web.deps import (
    CsrfDep,
    LangDep,
    NowDep,
    RefDep,
    SessionDep,
    SettingsDep,
    SinkDep,
    lang_of,
    now_of,
    read_form,
    reference_of,
    render,
    settings_of,
    verify_csrf,
)

router = APIRouter(default_response_class=HTMLResponse)
# Default None, not ``default_factory=list``: pydantic inspects a factory's signature on every request,
# and for the builtin ``list`` that means parsing its text signature (5 % of a submission's time).
PhotosField = Annotated[list[UploadFile] | None, File()]


def client_ip(request: Request, trust_forwarded_for: bool) -> str:
    forwarded = request.headers.get("x-forwarded-for", "")
    if trust_forwarded_for and forwarded:
        return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else "unknown"


# "Laporan saya": tracking codes this browser chose to remember, newest first. Only codes (each one
# already the key to its status page), never names or text; off unless the citizen ticks the box,
# since a phone may be shared. Read on /lacak, cleared with one button there.
MINE_COOKIE = "bcc_mine"
MINE_MAX = 20


def remembered(request: Request) -> list[str]:
    codes = (reports.normalize_code(c) for c in request.cookies.get(MINE_COOKIE, "").split("."))
    return list(dict.fromkeys(c for c in codes if c))[:MINE_MAX]


def remember(request: Request, response: Response, code: str) -> None:
    codes = [code, *(c for c in remembered(request) if c != code)][:MINE_MAX]
    response.set_cookie(
        MINE_COOKIE,
        ".".join(codes),
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).cookie_secure,
    )


def read_photos(files: list[UploadFile] | None, max_bytes: int) -> list[bytes]:
    """Raw bytes of the chosen files (an empty file input sends one nameless, empty part: skipped)."""
    out = []
    for f in files or ():
        data = f.file.read(max_bytes + 1)
        if f.filename or data:
            out.append(data)
    return out


async def read_photos_async(files: list[StarletteUpload], max_bytes: int) -> list[bytes]:
    """:func:`read_photos` for async routes (spooled uploads over 1 MB sit in a temporary file)."""
    out = []
    for f in files:
        data = await f.read(max_bytes + 1)
        if f.filename or data:
            out.append(data)
    return out


def policy(settings: SettingsDep) -> reports.PhotoPolicy:
    return reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)


@router.get("/")
def home(request: Request, lang: LangDep, ref: RefDep) -> Response:
    return render(request, lang, "home.html", {"categories": list(ref.categories.values())})


def _form_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    inp: reports.ReportInput,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    similar: list[Report] = []
    if inp.category and inp.kelurahan:
        try:
            point = reports.parse_point(inp.lat, inp.lon)
        except ValueError:
            point = None
        similar = reports.similar(db, inp.category, inp.kelurahan, point)
    return render(
        request,
        lang,
        "report_form.html",
        {"form": inp, "errors": errors, "similar": similar, "checked": bool(inp.category and inp.kelurahan)},
        status,
    )


@router.get("/lapor")
def report_form(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    category: str = "",
    kelurahan: str = "",
    title: str = "",
    lat: str = "",
    lon: str = "",
) -> Response:
    inp = reports.ReportInput(
        category=category, kelurahan=kelurahan, title=title[:200], lat=lat[:20], lon=lon[:20]
    )
    return _form_page(request, lang, db, inp, {})


REPORT_FIELDS = {f.name: f.default for f in dataclasses.fields(reports.ReportInput)}
# The form as OpenAPI sees it. The route reads the parsed form itself instead of declaring thirteen
# ``Form()`` parameters: FastAPI's per-parameter validation cost more than the insert (0.4 ms of a
# 0.7 ms request; docs/performance.md, "Portal"), and every field is a plain string checked by
# ``reports.validate`` anyway.
FORM_TEXT_FIELDS = ["csrf_token", *REPORT_FIELDS, "website", "remember"]  # website: the honeypot
REPORT_FORM_SCHEMA = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in FORM_TEXT_FIELDS},
                        "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in FORM_TEXT_FIELDS},
                    },
                }
            },
        }
    }
}


@router.post("/lapor", openapi_extra=REPORT_FORM_SCHEMA)
async def submit_report(request: Request) -> Response:
    """The citizen's report form: async, no dependencies (the CSRF check is called here, not resolved
    by FastAPI: a generator dependency costs as much as the insert), the insert through the
    group-commit writer (portal.services.report_writer). Plain urlencoded submissions, the hot path of
    ``bcc bench portal``, reach :func:`submit_form` through portal.web.fastpath instead."""
    form = await read_form(request)  # size-capped by BodyLimitMiddleware; closed below in every case
    try:
        await verify_csrf(request, form)
        return await submit_form(request, form)
    finally:
        await form.close()


async def submit_form(request: Request, form: FormData) -> Response:
    """Validate and store the report of ``form`` (its CSRF token already checked): the redirect to its
    status page, or the form again with the problems (HTTPException 429 over the rate limit). Also
    called by portal.web.fastpath for plain urlencoded submissions."""
    values = {name: form.get(name, default) for name, default in REPORT_FIELDS.items()}
    inp = reports.ReportInput(**{k: v if isinstance(v, str) else "" for k, v in values.items()})
    settings = settings_of(request)
    if form.get("website"):  # the honeypot: people never see this field, naive bots fill it in
        return await run_in_threadpool(_form_page_db, request, inp, {"form": "err_form"}, 400)
    photos = [f for f in form.getlist("photos") if isinstance(f, StarletteUpload)]
    client = client_ip(request, settings.trust_forwarded_for)
    writer = request.app.state.report_writer
    try:
        raws = await read_photos_async(photos, settings.max_photo_bytes)
        ref, now = reference_of(request), now_of(request)
        if raws:  # decoding and re-encoding photos is CPU work for a thread: not for a client over its limit
            if await run_in_threadpool(writer.over_limit, client, now):
                raise HTTPException(429, "Too many submissions")
            prepared = await run_in_threadpool(
                reports.prepare_report, ref, inp, raws, policy(settings), now, "web", client
            )
        else:
            prepared = reports.prepare_report(ref, inp, raws, policy(settings), now, "web", client)
        # the limit itself is counted in the insert's transaction (portal.services.ratelimit)
        report = await writer.submit(prepared)
    except InvalidInput as err:
        return await run_in_threadpool(_form_page_db, request, inp, err.errors, 400)
    if report is None:
        raise HTTPException(429, "Too many submissions")
    response = RedirectResponse(f"/laporan/{report.code}?baru=1", status_code=303)
    if form.get("remember") == "1":
        remember(request, response, report.code)
    return response


def _form_page_db(
    request: Request, inp: reports.ReportInput, errors: dict[str, str], status: int
) -> Response:
    with request.app.state.sessions() as db:
        return _form_page(request, lang_of(request), db, inp, errors, status)


@router.get("/lacak")
def track(request: Request, lang: LangDep, db: SessionDep, kode: str = "") -> Response:
    code = reports.normalize_code(kode)
    if code:
        return RedirectResponse(f"/laporan/{code}", status_code=303)
    context = {"code": kode[:40], "not_found": bool(kode), "mine": reports.by_codes(db, remembered(request))}
    return render(request, lang, "track.html", context, 404 if kode else 200)


@router.post("/laporan/{code}/ingat", dependencies=[CsrfDep])
def remember_report(request: Request, db: SessionDep, code: str) -> Response:
    """Remember this report on this device (the "Laporan saya" list on /lacak)."""
    try:
        report = reports.get_by_code(db, code)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    response = RedirectResponse(f"/laporan/{report.code}", status_code=303)
    remember(request, response, report.code)
    return response


@router.post("/lacak/lupakan", dependencies=[CsrfDep])
def forget_reports(request: Request) -> Response:
    """Forget every report remembered on this device."""
    response = RedirectResponse("/lacak", status_code=303)
    response.delete_cookie(
        MINE_COOKIE, httponly=True, samesite="lax", secure=settings_of(request).cookie_secure
    )
    return response


def _status_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    code: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    try:
        report = reports.get_by_code(db, code)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    reopenable = (
        report.status == "closed"
        and report.resolution == "resolved_direct"
        and report.closed_at is not None
        and now - report.closed_at <= deadlines.REOPEN_WINDOW
    )
    context = {
        "report": report,
        "entries": report.entries,
        "reopenable": reopenable,
        "rateable": reports.feedback_open(report, now),
        "stricter": reports.stricter_privacies(report),
        "remembered": report.code in remembered(request),
        "verdicts": FEEDBACKS,
        "errors": errors or {},
        "new": request.query_params.get("baru") == "1",
    }
    return render(request, lang, "status.html", context, status)


@router.get("/laporan/{code}")
def report_status(request: Request, lang: LangDep, db: SessionDep, now: NowDep, code: str) -> Response:
    return _status_page(request, lang, db, now, code)


def _citizen_step(
    request: Request,
    lang: Lang,
    db: Session,
    now: datetime,
    code: str,
    refused_field: str,
    step: Callable[[], Report],
) -> Response:
    """Run one of the reporter's steps on their report: the status page again on success (303), with
    the errors in the user's language on bad input (400) or a step the report's state refuses (409)."""
    try:
        report = step()
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    except InvalidInput as err:
        return _status_page(request, lang, db, now, code, err.errors, 400)
    except TransitionRefused as err:
        return _status_page(request, lang, db, now, code, {refused_field: str(err)}, 409)
    return RedirectResponse(f"/laporan/{report.code}", status_code=303)


@router.post("/laporan/{code}/info", dependencies=[CsrfDep])
def add_info(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    code: str,
    photos: PhotosField = None,
    body: Annotated[str, Form()] = "",
) -> Response:
    raws = read_photos(photos, settings.max_photo_bytes)
    step = partial(reports.add_info, db, code, body, raws, policy(settings), now)
    return _citizen_step(request, lang, db, now, code, "body", step)


@router.post("/laporan/{code}/buka", dependencies=[CsrfDep])
def reopen(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    sink: SinkDep,
    now: NowDep,
    code: str,
    reason: Annotated[str, Form()] = "",
) -> Response:
    step = partial(reports.reopen, db, code, reason, sink, now)
    return _citizen_step(request, lang, db, now, code, "reason", step)


@router.post("/laporan/{code}/nilai", dependencies=[CsrfDep])
def rate(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    code: str,
    verdict: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """The reporter's verdict on a closed report: solved, partly, unsolved (once per closure)."""
    step = partial(reports.give_feedback, db, code, verdict, comment, now)
    return _citizen_step(request, lang, db, now, code, "verdict", step)


@router.post("/laporan/{code}/privasi", dependencies=[CsrfDep])
def raise_privacy(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    code: str,
    privacy: Annotated[str, Form()] = "",
) -> Response:
    """The reporter hides their name (anonymous) or the whole report (confidential) after the fact."""
    step = partial(reports.raise_privacy, db, code, privacy, now)
    return _citizen_step(request, lang, db, now, code, "privacy", step)


def map_points(rows: list[Report]) -> list[dict[str, object]]:
    """SVG coordinates (400 x 600 box over Binjai, north up) of the reports that carry a map point."""
    south, north, west, east = reports.BBOX
    return [
        {
            "x": round((r.lon - west) / (east - west) * 400, 1),
            "y": round((north - r.lat) / (north - south) * 600, 1),
            "report": r,
        }
        for r in rows
        if r.lat is not None and r.lon is not None
    ]


@router.get("/daftar")
def public_list(
    request: Request, lang: LangDep, db: SessionDep, category: str = "", kelurahan: str = "", page: int = 1
) -> Response:
    page = min(max(page, 1), 1000)
    rows = reports.public_list(db, category, kelurahan, limit=50, offset=(page - 1) * 50)
    context = {
        "reports": rows,
        "category": category,
        "kelurahan": kelurahan,
        "page": page,
        "statuses": STATUSES,
        "points": map_points(rows),
    }
    return render(request, lang, "list.html", context)


@router.get("/foto/{name}")
async def photo(request: Request, name: str, settings: SettingsDep) -> Response:
    """Stored photos only, by their random name, as JPEG that browsers may not sniff or script."""
    if not NAME_RE.match(name):
        raise HTTPException(404, "No such photo")
    path = settings.media_dir / name
    if not await run_in_threadpool(path.is_file):
        raise HTTPException(404, "No such photo")
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": f'inline; filename="{name}"',
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
