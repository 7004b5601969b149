"""Request dependencies of all routes: the runtime, DB session, settings, language, CSRF, staff user."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from portal.config import Settings
from portal.db import writer
from portal.i18n import translate, translate_n
from portal.models import StaffSession, User
from portal.reference import LANGS, Lang, Reference, lang_or_default
from portal.runtime import PortalRuntime, runtime_of
from portal.services import deadlines, users
from portal.services.events import EventSink
from portal.web.labels import Names

SESSION_COOKIE = "bcc_session"
LANG_COOKIE = "lang"


# The dependencies below never block, so they are ``async def``: FastAPI runs a plain ``def`` dependency
# in the thread pool, and the hops (one per dependency, two for a generator) cost more than a database
# insert (docs/performance.md, "Portal"). The ``*_of(request)`` forms serve code that is not a route.
def runtime_from(request: Request) -> PortalRuntime:
    """The portal's runtime (portal.runtime), the one thing the app keeps in ``app.state``."""
    return runtime_of(request.app)


async def get_runtime(request: Request) -> PortalRuntime:
    return runtime_from(request)


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session that connects lazily, in the route's thread; closed here without blocking the loop."""
    session = runtime_from(request).sessions()
    try:
        yield session
    finally:
        if session.in_transaction():  # still holds a connection: the rollback is I/O
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


def settings_of(request: Request) -> Settings:
    return runtime_from(request).settings


async def get_reference(request: Request) -> Reference:
    return reference_of(request)


def reference_of(request: Request) -> Reference:
    return runtime_from(request).reference


async def get_sink(request: Request) -> EventSink:
    return runtime_from(request).connections.events


async def get_now(request: Request) -> datetime:
    return now_of(request)


def now_of(request: Request) -> datetime:
    return runtime_from(request).clock()


async def get_lang(request: Request) -> Lang:
    return lang_of(request)


def lang_of(request: Request) -> Lang:
    """The page's language: ``?lang=``, else the ``lang`` cookie (set by a ``?lang=`` link), else a
    signed-in staff member's own language (their contact language, ``bcc-portal-admin contact --lang``),
    else the default (Indonesian). Staff and public pages choose it the same way."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if chosen not in LANGS and request.cookies.get(SESSION_COOKIE):
        chosen = getattr(load_staff_session(request), "lang", "")  # loaded once per request
    return lang_or_default(chosen)


RuntimeDep = Annotated[PortalRuntime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RefDep = Annotated[Reference, Depends(get_reference)]
SinkDep = Annotated[EventSink, Depends(get_sink)]
NowDep = Annotated[datetime, Depends(get_now)]
LangDep = Annotated[Lang, Depends(get_lang)]


def client_ip(request: Request, trust_forwarded_for: bool) -> str:
    """The client's address: the last ``X-Forwarded-For`` hop when the proxy in front is trusted."""
    forwarded = request.headers.get("x-forwarded-for", "")
    if trust_forwarded_for and forwarded:
        return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else "unknown"


# ---- CSRF --------------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """The token forms must echo: the staff session's own token, else an HMAC of the ``bcc_csrf`` cookie."""
    session = request.scope.get("state", {}).get("staff_session")
    if session is not None:
        token: str = session.csrf_token
        return token
    return cookie_csrf_token(request)


def cookie_csrf_token(request: Request) -> str:
    """The token of a browser without a staff session: an HMAC (server secret) of its ``bcc_csrf``
    cookie, which another site can neither read nor compute."""
    settings = settings_of(request)
    cookie = request.scope.get("state", {}).get("csrf_cookie", "")
    return hmac.new(
        settings.secret_key.get_secret_value().encode(), cookie.encode(), hashlib.sha256
    ).hexdigest()


URLENCODED = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1000  # Starlette's own limit for parsed forms


async def read_form(request: Request) -> FormData:
    """The request's form. A urlencoded body (the report form without photos: almost every citizen
    submission) is decoded with the standard library's ``parse_qsl``, which gives what Starlette's
    form parser gives (``unquote_plus`` of each name and value, blank values kept) in a fifth of the
    time (docs/performance.md, "Portal"); multipart bodies go to Starlette. The body is size-capped by
    BodyLimitMiddleware before either sees it."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != URLENCODED:
        return await request.form()
    body = (await request.body()).decode("latin-1")
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        )
    except ValueError as err:
        raise HTTPException(400, "Too many form fields") from err
    return FormData(pairs)


def reject_nul(form: FormData) -> None:
    """400 for a NUL character in any text field (PostgreSQL cannot store it; no person types it)."""
    if any(isinstance(v, str) and "\x00" in v for _k, v in form.multi_items()):
        raise HTTPException(400, "NUL byte in form")


async def verify_csrf(request: Request, form: FormData) -> None:
    """403 unless ``form`` (the request's parsed form) carries the right ``csrf_token``; 400 for NUL."""
    reject_nul(form)
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not request.cookies.get("bcc_csrf"):
        raise HTTPException(403, "CSRF token missing")
    if request.cookies.get(SESSION_COOKIE):  # a database lookup only for staff
        await run_in_threadpool(load_staff_session, request)
    else:
        load_staff_session(request)
    if hmac.compare_digest(sent, csrf_token(request)):
        return
    if not hmac.compare_digest(sent, cookie_csrf_token(request)):
        raise HTTPException(403, "CSRF token invalid")
    # A public page rendered for a logged-in staff member carries the cookie token (public pages do
    # not look the session up), so it is accepted, but the request then acts anonymously: the cookie
    # token proves only this browser, and a ``bcc_csrf`` cookie can be planted (a sibling subdomain,
    # plain HTTP), so it must never authorize a staff action. Staff routes then answer 401.
    state = request.scope.setdefault("state", {})
    state["staff_user"] = state["staff_session"] = state["pending_session"] = None


async def check_csrf(request: Request) -> AsyncIterator[None]:
    """:func:`verify_csrf` as the dependency of every state-changing HTML route.

    Parses the form (Starlette caches it for the route) and closes it when the request is done, also
    when the check fails: uploads spooled to temporary files are released either way. (The report
    form, the hot path, calls :func:`verify_csrf` itself: docs/performance.md, "Portal".)"""
    form = await request.form()
    try:
        await verify_csrf(request, form)
        yield
    finally:
        await form.close()


CsrfDep = Depends(check_csrf)


# ---- the rate limit of public writes -----------------------------------------------------------------
def public_write_allowed(request: Request) -> bool:
    """Count one public write (a reporter action, "check similar", an Open311 POST) for the client's
    address in the shared limit (``rate_hits``, every worker); False when it is over
    ``public_writes_per_hour``. Blocking: call from a thread."""
    runtime = runtime_from(request)
    client = client_ip(request, runtime.settings.trust_forwarded_for)
    with runtime.sessions() as db, writer(db):
        allowed = runtime.public_limiter.hit(db.connection(), [client], runtime.clock())[0]
        db.commit()
    return allowed


def limit_public_write(request: Request) -> None:
    if not public_write_allowed(request):
        raise HTTPException(429, "Too many requests")


PublicWriteLimit = Depends(limit_public_write)


# ---- staff sessions and roles ------------------------------------------------------------------------
def load_staff_session(request: Request) -> User | None:
    """The logged-in staff member (None when anonymous or still owing the second factor); a session
    that waits for the second factor is kept as ``request.state.pending_session``."""
    state = request.scope.get("state", {})  # Request.state's dict (State raises on a missing key)
    if "staff_user" in state:
        user: User | None = state["staff_user"]
        return user
    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        with runtime_from(request).sessions() as db:
            found = users.load_session(db, token, now_of(request))
    request.state.staff_session = found  # its CSRF token is the one forms carry (pending or not)
    pending = found is not None and found.pending_2fa
    request.state.pending_session = found if pending else None
    user = found.user if found and not pending else None
    request.state.staff_user = user
    return user


def pending_session(request: Request) -> StaffSession:
    """The session between password and second factor; anything else goes back to the login page."""
    load_staff_session(request)
    found: StaffSession | None = request.scope.get("state", {}).get("pending_session")
    if found is None:
        raise LoginRequired()
    return found


class LoginRequired(Exception):
    """Anonymous request to a staff route: GET is redirected to the login page, others get 401."""


class RoleGuard:
    """Dependency allowing only the given roles; routes keep it in their dependant (tests introspect it)."""

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    def __call__(self, request: Request) -> User:
        user = load_staff_session(request)
        if user is None:
            raise LoginRequired()
        if user.role not in self.roles:
            raise HTTPException(403, "Your role may not do this")
        return user


PendingDep = Annotated[StaffSession, Depends(pending_session)]
ALL_STAFF = ("admin", "agency", "kepala_dinas", "operator", "viewer")
StaffUser = Annotated[User, Depends(RoleGuard(*ALL_STAFF))]
AdminUser = Annotated[User, Depends(RoleGuard("admin"))]
ResponderUser = Annotated[User, Depends(RoleGuard("admin", "agency"))]
EvaluationUser = Annotated[User, Depends(RoleGuard("admin", "operator", "viewer"))]


# ---- templates -----------------------------------------------------------------------------------------
def render(
    request: Request, lang: Lang, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    runtime = runtime_from(request)
    staff = getattr(request.state, "staff_user", None)
    base = {
        "lang": lang,
        "t": lambda key, **fields: translate(key, lang, **fields),
        "tn": lambda key, plural_key, n, **fields: translate_n(key, plural_key, n, lang, **fields),
        # the language links: every other language, named in itself (docs/portal.md, "Languages")
        "other_langs": [(other, translate("lang_name", other)) for other in LANGS if other != lang],
        "csrf_token": csrf_token(request),
        "ref": reference_of(request),
        "staff": staff,
        "names": Names(reference_of(request), lang),
        # staff pages say when the deadlines lack a year's holiday decree (portal/data/holidays.yaml)
        "holiday_gap": deadlines.missing_decree(runtime.clock().astimezone(deadlines.WIB).date())
        if staff is not None
        else None,
    }
    templates = runtime.templates
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    if request.query_params.get("lang") in ("id", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    response.headers["Cache-Control"] = "no-store"
    return response
