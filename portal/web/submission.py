"""The citizen's report form, shared by its route (portal.web.public), the fast path and Open311:
form page, submission, photo uploads, the "Laporan saya" cookie and the cookie of reporter keys."""

from __future__ import annotations

import dataclasses

from fastapi import HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response

from portal.config import Settings
from portal.errors import InvalidInput
from portal.i18n import translate
from portal.models import Report
from portal.reference import Lang
from portal.runtime import PortalRuntime
from portal.services import reporter_keys, reports
from portal.services.photos import MAX_PIXELS, MAX_SIDE
from portal.services.reports import NewReport
from portal.web.deps import client_ip, lang_of, render, runtime_from, settings_of

# "Laporan saya": tracking codes this browser chose to remember, newest first. Only codes (public ids:
# they grant nothing, the reporter's keys are in KEYS_COOKIE), never names or text; off unless the
# citizen ticks the box, since a phone may be shared. Read on /lacak, cleared with one button there.
# For reports stored before keys existed it is also the one trace of their reporter (a key claim,
# portal.web.reporter).
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


# The keys of the reports submitted (or claimed) in this browser: "CODE:KEY" items joined by ".",
# newest first. HttpOnly (no script reads it), SameSite=Lax, Secure with ``cookie_secure``; always set
# on submission, since without it the submitter could not act on their report from this browser.
KEYS_COOKIE = "bcc_keys"
KEYS_MAX = 20
KEYS_MAX_AGE = 365 * 86400


def held_keys(request: Request) -> dict[str, str]:
    """Tracking code -> key of every well-formed entry of the keys cookie (not checked against the
    database: portal.web.reporter.access does that for the report at hand)."""
    held: dict[str, str] = {}
    for item in request.cookies.get(KEYS_COOKIE, "").split("."):
        raw_code, _, key = item.partition(":")
        code = reports.normalize_code(raw_code)
        if code and code not in held and reporter_keys.well_formed(key):
            held[code] = key
        if len(held) >= KEYS_MAX:
            break
    return held


def keep_key(request: Request, response: Response, code: str, key: str) -> None:
    """Remember ``key`` of report ``code`` in this browser (the newest first; the oldest beyond
    ``KEYS_MAX`` are dropped).

    The header is written here, not with ``Response.set_cookie``: the standard library's cookie
    builder cost 40 us, a tenth of a submission's time in the web process, and the value needs no
    quoting (normalized codes and URL-safe keys, joined by ":" and ".")."""
    items = [(code, key), *((c, k) for c, k in held_keys(request).items() if c != code)][:KEYS_MAX]
    value = ".".join(f"{c}:{k}" for c, k in items if reporter_keys.well_formed(k))
    secure = "; Secure" if settings_of(request).cookie_secure else ""
    header = f"{KEYS_COOKIE}={value}; HttpOnly; Max-Age={KEYS_MAX_AGE}; Path=/; SameSite=lax{secure}"
    response.raw_headers.append((b"set-cookie", header.encode("latin-1")))


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


def photo_limits(settings: Settings) -> dict[str, int]:
    """The server's photo limits, which the web app checks on the phone before it resizes a photo."""
    return {
        "photos": settings.max_photos,
        "bytes": settings.max_photo_bytes,
        "pixels": MAX_PIXELS,
        "side": MAX_SIDE,
    }


def policy(settings: Settings) -> reports.PhotoPolicy:
    return reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)


def form_page(
    request: Request,
    lang: Lang,
    db: Session,
    inp: reports.ReportInput,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    """The report form with the similar reports already listed publicly (portal.services.visibility)."""
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
        {
            "form": inp,
            "errors": errors,
            "similar": similar,
            "checked": bool(inp.category and inp.kelurahan),
            "limits": photo_limits(settings_of(request)),
            "sms_available": sms_available(runtime_from(request)),
        },
        status,
    )


REPORT_FIELDS = {f.name: f.default for f in dataclasses.fields(reports.ReportInput)}


def sms_available(runtime: PortalRuntime) -> bool:
    """Whether this portal sends SMS (a provider is configured): the form offers the channel only then."""
    notifier = runtime.connections.notifier
    return notifier is not None and notifier.sms is not None


async def submit_form(runtime: PortalRuntime, request: Request, form: FormData) -> Response:
    """Validate and store the report of ``form`` (its CSRF token already checked): the redirect to its
    status page, or the form again with the problems (HTTPException 429 over the rate limit). Called
    by the route and by portal.web.fastpath for plain urlencoded submissions."""
    inp = form_input(form)
    if form.get("website"):  # the honeypot: people never see this field, naive bots fill it in
        return await run_in_threadpool(_form_page_db, runtime, request, inp, {"form": "err_form"}, 400)
    try:
        report, prepared = await store(runtime, request, form, inp)
    except InvalidInput as err:
        return await run_in_threadpool(_form_page_db, runtime, request, inp, err.errors, 400)
    response = RedirectResponse(f"/laporan/{report.code}?baru=1", status_code=303)
    keep_key(request, response, report.code, prepared.key)  # shown once on the page redirected to
    if form.get("remember") == "1":
        remember(request, response, report.code)
    return response


def form_input(form: FormData) -> reports.ReportInput:
    values = {name: form.get(name, default) for name, default in REPORT_FIELDS.items()}
    return reports.ReportInput(**{k: v if isinstance(v, str) else "" for k, v in values.items()})


async def store(
    runtime: PortalRuntime, request: Request, form: FormData, inp: reports.ReportInput, draft_key: str = ""
) -> tuple[NewReport, reports.Prepared]:
    """Prepare (photos cleaned in a thread) and write the report: InvalidInput with the problems,
    HTTPException 429 over the submission limit."""
    settings = runtime.settings
    photos = [f for f in form.getlist("photos") if isinstance(f, StarletteUpload)]
    client = client_ip(request, settings.trust_forwarded_for)
    writer = runtime.report_writer
    raws = await read_photos_async(photos, settings.max_photo_bytes)
    ref, now, lang = runtime.reference, runtime.clock(), lang_of(request)
    if inp.notify_channel == "sms" and not sms_available(runtime):
        raise InvalidInput({"notify_channel": "err_sms_unavailable"})
    if raws:  # decoding and re-encoding photos is CPU work for a thread: not for a client over its limit
        if await run_in_threadpool(writer.over_limit, client, now):
            raise HTTPException(429, "Too many submissions")
        prepared = await run_in_threadpool(
            reports.prepare_report, ref, inp, raws, policy(settings), now, "web", client, draft_key, lang
        )
    else:
        prepared = reports.prepare_report(
            ref, inp, raws, policy(settings), now, "web", client, draft_key, lang
        )
    # the limit itself is counted in the insert's transaction (portal.services.ratelimit)
    report = await writer.submit(prepared)
    if report is None:
        raise HTTPException(429, "Too many submissions")
    return report, prepared


async def submit_draft(runtime: PortalRuntime, request: Request, form: FormData) -> Response:
    """An offline draft of the web app (``POST /lapor/draf``, its CSRF token already checked), sent
    with its idempotency key ``draft_key``: JSON with the tracking code and the reporter's key, the
    same for every replay of the same key (docs/portal.md, "Offline drafts"); 400 with the problems
    as texts in the page's language."""
    lang = lang_of(request)
    draft_key = form.get("draft_key")
    if not isinstance(draft_key, str) or not reporter_keys.well_formed_draft_key(draft_key):
        return _draft_errors({"form": "err_form"}, lang)
    if (code := await run_in_threadpool(_draft_code, runtime, draft_key)) is not None:
        return _draft_answer(request, form, code, draft_key, replayed=True)
    if form.get("website"):
        return _draft_errors({"form": "err_form"}, lang)
    try:
        report, _ = await store(runtime, request, form, form_input(form), draft_key)
    except InvalidInput as err:
        return _draft_errors(err.errors, lang)
    except HTTPException:
        raise
    except Exception:
        # two copies of one draft raced (a retry while the first was being written): the unique
        # draft hash let one in; the other answers with it
        if (code := await run_in_threadpool(_draft_code, runtime, draft_key)) is None:
            raise
        return _draft_answer(request, form, code, draft_key, replayed=True)
    return _draft_answer(request, form, report.code, draft_key, replayed=False)


def _draft_code(runtime: PortalRuntime, draft_key: str) -> str | None:
    with runtime.sessions() as db:
        report = reports.by_draft_key(db, draft_key)
        return None if report is None else report.code


def _draft_errors(errors: dict[str, str], lang: Lang) -> Response:
    texts = {field: translate(key, lang) for field, key in errors.items()}
    return JSONResponse({"errors": texts}, 400, headers={"Cache-Control": "no-store"})


def _draft_answer(request: Request, form: FormData, code: str, draft_key: str, replayed: bool) -> Response:
    key, _ = reporter_keys.key_from_draft(draft_key)
    body = {
        "code": code,
        "key": key,
        "status_url": f"/laporan/{code}?baru=1",
        "key_url": f"/laporan/{code}/kunci/{key}",
        "replayed": replayed,
    }
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    keep_key(request, response, code, key)
    if form.get("remember") == "1":
        remember(request, response, code)
    return response


def _form_page_db(
    runtime: PortalRuntime, request: Request, inp: reports.ReportInput, errors: dict[str, str], status: int
) -> Response:
    with runtime.sessions() as db:
        return form_page(request, lang_of(request), db, inp, errors, status)
