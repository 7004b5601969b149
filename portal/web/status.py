"""The report's own pages: its status by code, the reporter's key (link and form), the reporter's actions
(add information, reopen, rate, raise privacy; with the reporter's key only), "remember", and photos.
What anyone but the reporter sees follows portal.services.visibility and portal.web.reporter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from portal.errors import InvalidInput, NotFound, TransitionRefused
from portal.models import AGENCY_ROLES, FEEDBACKS, Photo, Report
from portal.reference import Lang
from portal.services import deadlines, proposals, reporter_keys, reports, visibility, workflow
from portal.services.photos import NAME_RE
from portal.web import reporter, submission
from portal.web.deps import (
    CsrfDep,
    LangDep,
    NowDep,
    PublicWriteLimit,
    RefDep,
    SessionDep,
    SettingsDep,
    SinkDep,
    load_staff_session,
    render,
    runtime_from,
    settings_of,
)

router = APIRouter(default_response_class=HTMLResponse)
# Default None, not ``default_factory=list``: pydantic inspects a factory's signature on every request,
# and for the builtin ``list`` that means parsing its text signature (5 % of a submission's time).
PhotosField = Annotated[list[UploadFile] | None, File()]


def _visible(request: Request, db: Session, code: str) -> Report:
    """The report of ``code`` if this request may see it (portal.web.reporter.may_see), else 404: a
    confidential report is indistinguishable from an unknown code for anyone but its reporter."""
    try:
        report = reports.get_by_code(db, code)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    if not reporter.may_see(request, report):
        raise HTTPException(404, "No such report")
    return report


@router.post("/laporan/{code}/ingat", dependencies=[CsrfDep, PublicWriteLimit])
def remember_report(request: Request, db: SessionDep, code: str) -> Response:
    """Remember this report on this device (the "Laporan saya" list on /lacak)."""
    report = _visible(request, db, code)
    response = RedirectResponse(f"/laporan/{report.code}", status_code=303)
    submission.remember(request, response, report.code)
    return response


def _status_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    code: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
    granted: reporter.Access | None = None,
) -> Response:
    """The status page. Anyone with the code sees a report that is not confidential (not its contact
    details: the page never shows them); only its reporter sees the reporter's forms, and a
    confidential report at all (404 for everyone else)."""
    report = _visible(request, db, code)
    acc = granted or reporter.access(request, db, report)
    if not acc.reporter and not visibility.is_not_confidential(report):
        raise HTTPException(404, "No such report")
    new = request.query_params.get("baru") == "1"
    # shown once: right after submission (or a claim), from the cookie the submission set
    shown_key = acc.issued or (
        submission.held_keys(request).get(report.code) if new and acc.reporter else None
    )
    duplicate = report.duplicate_of
    reopenable = (
        report.status == "closed"
        and report.resolution == "resolved_direct"
        and report.closed_at is not None
        and now - report.closed_at <= deadlines.REOPEN_WINDOW
    )
    context = {
        "report": report,
        "entries": report.entries,
        "reporter": acc.reporter,
        "reopenable": acc.reporter and reopenable,
        "rateable": acc.reporter and reports.feedback_open(report, now),
        "stricter": reports.stricter_privacies(report) if acc.reporter else (),
        "remembered": report.code in submission.remembered(request),
        "verdicts": FEEDBACKS,
        "errors": errors or {},
        "new": new,
        "shown_key": shown_key,
        "key_link": f"{settings_of(request).public_url}/laporan/{report.code}/kunci/{shown_key}",
        # the original of a duplicate is linked only if it is not confidential
        "duplicate_code": duplicate.code if duplicate and visibility.is_not_confidential(duplicate) else None,
        # the development proposal carrying a needs-budget report (portal/services/proposals.py)
        "proposal": proposals.of_report(db, report.id) if report.resolution == "needs_budget" else None,
    }
    response = render(request, lang, "status.html", context, status)
    if acc.issued:
        submission.keep_key(request, response, report.code, acc.issued)
    return response


@router.get("/laporan/{code}")
def report_status(request: Request, lang: LangDep, db: SessionDep, now: NowDep, code: str) -> Response:
    return _status_page(request, lang, db, now, code)


def _open_with_key(request: Request, db: Session, code: str, key: str) -> Response:
    """Keep ``key`` in this browser if it opens report ``code``, then the status page (303); 404 for a
    wrong key or code, so that the answer tells nothing about either."""
    try:
        report = reports.get_by_code(db, code)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    if not reporter_keys.matches(key, report.secret_hash):
        raise HTTPException(404, "No such report")
    response = RedirectResponse(f"/laporan/{report.code}", status_code=303)
    submission.keep_key(request, response, report.code, key)
    return response


@router.get("/laporan/{code}/kunci/{key}", dependencies=[PublicWriteLimit])
def open_with_link(request: Request, db: SessionDep, code: str, key: str) -> Response:
    """The reporter's link (shown once after submission, sent by e-mail): keeps the key in this browser
    and redirects to the plain status page, so the key stays out of the address bar and the history.
    The portal's access log masks the key (portal.accesslog)."""
    return _open_with_key(request, db, code, key)


@router.post("/laporan/{code}/kunci", dependencies=[CsrfDep, PublicWriteLimit])
def open_with_typed_key(
    request: Request, db: SessionDep, code: str, kunci: Annotated[str, Form()] = ""
) -> Response:
    """The reporter types (or pastes) their key, or the whole link, on another device."""
    return _open_with_key(request, db, code, kunci.strip().rstrip("/").rpartition("/")[2])


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
    the errors in the user's language on bad input (400) or a step the report's state refuses (409).
    Only the reporter (the report's key) may: 403 for anyone else, 404 if the report is confidential."""
    acc = reporter.access(request, db, _visible(request, db, code))
    if not acc.reporter:
        return _status_page(request, lang, db, now, code, {"kunci": "err_reporter_key"}, 403, acc)
    try:
        report = step()
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    except InvalidInput as err:
        return _status_page(request, lang, db, now, code, err.errors, 400, acc)
    except TransitionRefused as err:
        return _status_page(request, lang, db, now, code, {refused_field: str(err)}, 409, acc)
    response = RedirectResponse(f"/laporan/{report.code}", status_code=303)
    if acc.issued:
        submission.keep_key(request, response, report.code, acc.issued)
    return response


@router.post("/laporan/{code}/info", dependencies=[CsrfDep, PublicWriteLimit])
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
    def step() -> Report:  # the photos are read only once the reporter is known
        raws = submission.read_photos(photos, settings.max_photo_bytes)
        return reports.add_info(db, code, body, raws, submission.policy(settings), now)

    return _citizen_step(request, lang, db, now, code, "body", step)


@router.post("/laporan/{code}/buka", dependencies=[CsrfDep, PublicWriteLimit])
def reopen(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    sink: SinkDep,
    ref: RefDep,
    now: NowDep,
    code: str,
    reason: Annotated[str, Form()] = "",
) -> Response:
    step = partial(reports.reopen, db, ref, code, reason, sink, now)
    return _citizen_step(request, lang, db, now, code, "reason", step)


@router.post("/laporan/{code}/nilai", dependencies=[CsrfDep, PublicWriteLimit])
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


@router.post("/laporan/{code}/privasi", dependencies=[CsrfDep, PublicWriteLimit])
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


# the roles whose pages show such reports (the agency's officers and head: those dispatched to it)
STAFF_SEEING_CONFIDENTIAL = frozenset({"admin", *AGENCY_ROLES})


def _photo_visible(request: Request, name: str) -> bool:
    """A photo is served publicly only while its report is not confidential (a report made confidential
    later keeps photo URLs that Open311 and pages already published: they stop working); otherwise only
    to its reporter, admins, and the officers and head of the agency it was dispatched to."""
    with runtime_from(request).sessions() as db:
        report = db.scalar(
            select(Report).join(Photo, Photo.report_id == Report.id).where(Photo.filename == name)
        )
        if report is None or visibility.is_not_confidential(report) or reporter.may_see(request, report):
            return report is not None
    user = load_staff_session(request)
    if user is None or user.role not in STAFF_SEEING_CONFIDENTIAL:
        return False
    with runtime_from(request).sessions() as db:  # an agency: only reports dispatched to it (its queue)
        query = select(Report.id).join(Photo, Photo.report_id == Report.id)
        return db.scalar(query.where(Photo.filename == name, workflow.visible_to(user))) is not None


@router.get("/foto/{name}")
async def photo(request: Request, name: str, settings: SettingsDep) -> Response:
    """Stored photos only, by their random name, as JPEG that browsers may not sniff or script."""
    if not NAME_RE.match(name) or not await run_in_threadpool(_photo_visible, request, name):
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
