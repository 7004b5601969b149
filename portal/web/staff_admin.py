"""Admin pages for staff accounts (deactivate, reactivate, reset password or second factor) and the
log of who viewed reporters' contact details."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from portal.errors import InvalidInput
from portal.models import User
from portal.services import personal_data, twofactor, users
from portal.web.deps import AdminUser, CsrfDep, LangDep, NowDep, SessionDep, render

router = APIRouter(prefix="/staf", default_response_class=HTMLResponse)
UserId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _account(db: Session, user_id: int) -> User:
    found = db.get(User, user_id)
    if found is None:
        raise HTTPException(404, "No such account")
    return found


def _accounts_page(
    request: Request, lang: LangDep, db: Session, admin: User, notice: str = "", password: str = ""
) -> Response:
    rows = [(u, twofactor.required(u)) for u in users.list_users(db)]
    context = {"rows": rows, "notice": notice, "password": password, "me": admin.id}
    return render(request, lang, "staff/accounts.html", context)


@router.get("/akun")
def accounts(request: Request, lang: LangDep, db: SessionDep, admin: AdminUser) -> Response:
    return _accounts_page(request, lang, db, admin)


@router.post("/akun/{user_id}/nonaktif", dependencies=[CsrfDep])
def deactivate(db: SessionDep, admin: AdminUser, user_id: UserId) -> Response:
    if user_id == admin.id:  # the last admin must not lock everyone out by mistake
        raise HTTPException(409, "You cannot deactivate your own account")
    users.set_active(db, _account(db, user_id), False)
    return RedirectResponse("/staf/akun", status_code=303)


@router.post("/akun/{user_id}/aktif", dependencies=[CsrfDep])
def reactivate(
    request: Request, lang: LangDep, db: SessionDep, admin: AdminUser, user_id: UserId
) -> Response:
    try:
        users.set_active(db, _account(db, user_id), True)
    except InvalidInput:  # a second active head (kepala_dinas) for one agency
        db.rollback()
        return render(request, lang, "error.html", {"status": 409, "message_key": "err_one_head"}, 409)
    return RedirectResponse("/staf/akun", status_code=303)


@router.post("/akun/{user_id}/sandi", dependencies=[CsrfDep])
def reset_password(
    request: Request, lang: LangDep, db: SessionDep, now: NowDep, admin: AdminUser, user_id: UserId
) -> Response:
    """A generated password, shown once to the admin (who hands it over); the account's sessions end."""
    account = _account(db, user_id)
    password = secrets.token_urlsafe(15)
    users.reset_password(db, account, password, now)
    return _accounts_page(request, lang, db, admin, account.username, password)


@router.post("/akun/{user_id}/2fa", dependencies=[CsrfDep])
def reset_second_factor(db: SessionDep, admin: AdminUser, user_id: UserId) -> Response:
    """The account enrols a new second factor at its next login (a lost phone); its sessions end."""
    account = _account(db, user_id)
    twofactor.reset(db, account)
    users.end_user_sessions(db, account)
    return RedirectResponse("/staf/akun", status_code=303)


@router.get("/akses-kontak")
def contact_log(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    admin: AdminUser,
    laporan: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> Response:
    rows = personal_data.contact_views(db, laporan)
    return render(request, lang, "staff/contact_log.html", {"rows": rows, "report_id": laporan})
