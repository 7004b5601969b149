"""Staff login: password, then the second factor (TOTP or a recovery code, enrolment on first use),
logout, and changing one's own password.

Login attempts are limited per client address (every attempt) and per account (failed passwords and
failed codes), both in the database so that every worker counts the same attempts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from portal.config import Settings
from portal.db import writer
from portal.errors import InvalidInput
from portal.models import StaffSession, User
from portal.services import twofactor, users
from portal.web.deps import (
    SESSION_COOKIE,
    CsrfDep,
    LangDep,
    NowDep,
    PendingDep,
    SessionDep,
    SettingsDep,
    StaffUser,
    client_ip,
    render,
    runtime_from,
)

router = APIRouter(prefix="/staf", default_response_class=HTMLResponse)


def safe_next(target: str) -> str:
    """Only local staff or console paths: no open redirect through ``next``."""
    local = target.startswith(("/staf", "/konsol", "/dinding"))
    login_flow = target.startswith(("/staf/masuk", "/staf/2fa"))  # would lead back here
    return target if local and not login_flow and "//" not in target and "\\" not in target else "/staf"


def _session_response(target: str, token: str, settings: Settings, hours: float) -> Response:
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token, settings, hours)
    return response


def set_session_cookie(response: Response, token: str, settings: Settings, hours: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
    )


def _account_key(username: str) -> str:
    return username.strip().lower()[:64]


def _account_blocked(request: Request, db: Session, username: str, now: datetime) -> bool:
    limiter = runtime_from(request).account_limiter
    key = _account_key(username)
    return limiter.used(db.connection(), [key], now)[key] >= limiter.limit


def _count_failure(request: Request, db: Session, username: str, now: datetime) -> None:
    with writer(db):
        runtime_from(request).account_limiter.hit(db.connection(), [_account_key(username)], now)
        db.commit()


@router.get("/masuk")
def login_form(request: Request, lang: LangDep, next: str = "/staf") -> Response:
    return render(request, lang, "staff/login.html", {"next": safe_next(next), "failed": False})


@router.post("/masuk", dependencies=[CsrfDep])
def login(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/staf",
) -> Response:
    with writer(db):  # the attempt counts in the shared limit whatever its outcome
        allowed = runtime_from(request).login_limiter.hit(
            db.connection(), [client_ip(request, settings.trust_forwarded_for)], now
        )[0]
        db.commit()
    if not allowed or _account_blocked(request, db, username, now):
        db.rollback()
        raise HTTPException(429, "Too many login attempts")
    db.rollback()  # end the read transaction before argon2 (no connection held while hashing)
    user = users.authenticate(db, username, password[:1024])
    if user is None:
        _count_failure(request, db, username, now)
        return render(request, lang, "staff/login.html", {"next": safe_next(next), "failed": True}, 401)
    if twofactor.required(user):
        token, _session = users.start_session(db, user, now, settings.session_hours, pending_2fa=True)
        hours = users.PENDING_SESSION.total_seconds() / 3600
        return _session_response(f"/staf/2fa?next={safe_next(next)}", token, settings, hours)
    token, _session = users.start_session(db, user, now, settings.session_hours)
    return _session_response(safe_next(next), token, settings, settings.session_hours)


def _second_factor_page(
    request: Request,
    lang: LangDep,
    db: Session,
    pending: StaffSession,
    next: str,
    error: str = "",
    status: int = 200,
) -> Response:
    user = db.get(User, pending.user_id)
    assert user is not None  # the session row cascades with its user
    context: dict[str, object] = {"next": safe_next(next), "error": error, "enrol": user.totp_secret is None}
    if user.totp_secret is None:
        row = db.get(StaffSession, pending.token_hash)
        assert row is not None
        if row.totp_candidate is None:  # one secret per login attempt, kept while the user types
            row.totp_candidate = twofactor.new_secret()
            db.commit()
        context["secret"] = row.totp_candidate
        context["uri"] = twofactor.provisioning_uri(row.totp_candidate, user.username)
    return render(request, lang, "staff/twofactor.html", context, status)


@router.get("/2fa")
def second_factor_form(
    request: Request, lang: LangDep, db: SessionDep, pending: PendingDep, next: str = "/staf"
) -> Response:
    return _second_factor_page(request, lang, db, pending, next)


@router.post("/2fa", dependencies=[CsrfDep])
def second_factor(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    pending: PendingDep,
    code: Annotated[str, Form()] = "",
    recovery: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/staf",
) -> Response:
    user = db.get(User, pending.user_id)
    assert user is not None
    if _account_blocked(request, db, user.username, now):
        raise HTTPException(429, "Too many login attempts")
    codes: list[str] = []
    if user.totp_secret is None:
        candidate = pending.totp_candidate
        step = twofactor.check_candidate(candidate, code[:32], now) if candidate else None
        ok = step is not None
        if step is not None and candidate:
            codes = twofactor.enrol(db, user, candidate, step)
    elif recovery.strip():
        ok = twofactor.use_recovery_code(db, user, recovery[:64], now)
    else:
        ok = twofactor.verify_code(db, user, code[:32], now)
    if not ok:
        _count_failure(request, db, user.username, now)
        return _second_factor_page(request, lang, db, pending, next, "tfa_wrong", 401)
    # a new token for the full session: the pending one (set before the second factor) ends here
    users.end_session(db, request.cookies.get(SESSION_COOKIE, ""))
    token, _session = users.start_session(db, user, now, settings.session_hours)
    if not codes:
        return _session_response(safe_next(next), token, settings, settings.session_hours)
    response = render(request, lang, "staff/recovery_codes.html", {"codes": codes, "next": safe_next(next)})
    set_session_cookie(response, token, settings, settings.session_hours)
    return response


@router.post("/keluar", dependencies=[CsrfDep])
def logout(request: Request, db: SessionDep) -> Response:
    # Ends the session (also one still waiting for its second factor) only when the form carried that
    # session's own CSRF token: CsrfDep drops the session when the form carried the cookie token.
    if request.scope["state"].get("staff_session") is not None:
        users.end_session(db, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/staf/masuk", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/sandi")
def password_form(request: Request, lang: LangDep, user: StaffUser) -> Response:
    return render(request, lang, "staff/password.html", {"error": "", "done": False})


@router.post("/sandi", dependencies=[CsrfDep])
def change_password(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    user: StaffUser,
    current: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    repeat: Annotated[str, Form()] = "",
) -> Response:
    me = db.get(User, user.id)
    assert me is not None
    try:
        users.change_own_password(
            db, me, current, password, repeat, now, request.cookies.get(SESSION_COOKIE, "")
        )
    except InvalidInput as err:
        db.rollback()
        context = {"error": next(iter(err.errors.values())), "done": False}
        return render(request, lang, "staff/password.html", context, 400)
    return render(request, lang, "staff/password.html", {"error": "", "done": True})
