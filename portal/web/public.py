"""Public pages: home, the report form with similar-report suggestions, status by code, the public list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from portal.errors import InvalidInput, NotFound, TransitionRefused
from portal.models import FEEDBACKS, STATUSES, Report
from portal.reference import Lang
from portal.services import deadlines, reports
from portal.services.photos import NAME_RE
from portal.web import submission
from portal.web.deps import (
    CsrfDep,
    LangDep,
    NowDep,
    RefDep,
    SessionDep,
    SettingsDep,
    SinkDep,
    read_form,
    render,
    runtime_from,
    settings_of,
    verify_csrf,
)

router = APIRouter(default_response_class=HTMLResponse)
# Default None, not ``default_factory=list``: pydantic inspects a factory's signature on every request,
# and for the builtin ``list`` that means parsing its text signature (5 % of a submission's time).
PhotosField = Annotated[list[UploadFile] | None, File()]


@router.get("/")
def home(request: Request, lang: LangDep, ref: RefDep) -> Response:
    return render(request, lang, "home.html", {"categories": list(ref.categories.values())})


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
    return submission.form_page(request, lang, db, inp, {})


# The form as OpenAPI sees it. The route reads the parsed form itself instead of declaring thirteen
# ``Form()`` parameters: FastAPI's per-parameter validation cost more than the insert (0.4 ms of a
# 0.7 ms request; docs/performance.md, "Portal"), and every field is a plain string checked by
# ``reports.validate`` anyway.
FORM_TEXT_FIELDS = ["csrf_token", *submission.REPORT_FIELDS, "website", "remember"]  # website: the honeypot
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
    ``bcc bench portal``, reach ``submission.submit_form`` through portal.web.fastpath instead."""
    form = await read_form(request)  # size-capped by BodyLimitMiddleware; closed below in every case
    try:
        await verify_csrf(request, form)
        return await submission.submit_form(runtime_from(request), request, form)
    finally:
        await form.close()


@router.get("/lacak")
def track(request: Request, lang: LangDep, db: SessionDep, kode: str = "") -> Response:
    code = reports.normalize_code(kode)
    if code:
        return RedirectResponse(f"/laporan/{code}", status_code=303)
    context = {
        "code": kode[:40],
        "not_found": bool(kode),
        "mine": reports.by_codes(db, submission.remembered(request)),
    }
    return render(request, lang, "track.html", context, 404 if kode else 200)


@router.post("/laporan/{code}/ingat", dependencies=[CsrfDep])
def remember_report(request: Request, db: SessionDep, code: str) -> Response:
    """Remember this report on this device (the "Laporan saya" list on /lacak)."""
    try:
        report = reports.get_by_code(db, code)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    response = RedirectResponse(f"/laporan/{report.code}", status_code=303)
    submission.remember(request, response, report.code)
    return response


@router.post("/lacak/lupakan", dependencies=[CsrfDep])
def forget_reports(request: Request) -> Response:
    """Forget every report remembered on this device."""
    response = RedirectResponse("/lacak", status_code=303)
    response.delete_cookie(
        submission.MINE_COOKIE, httponly=True, samesite="lax", secure=settings_of(request).cookie_secure
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
        "remembered": report.code in submission.remembered(request),
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
    raws = submission.read_photos(photos, settings.max_photo_bytes)
    step = partial(reports.add_info, db, code, body, raws, submission.policy(settings), now)
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
