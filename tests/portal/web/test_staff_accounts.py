"""Staff accounts a city can run: session-bound CSRF (defect 9), the second factor, throttling per
account, deactivation and password resets, on both databases."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from portal.models import RecoveryCode, Report, User
from portal.runtime import runtime_of
from tests.support.portal_app import FakeClock, Login, add_user, csrf, login, report_id, staff_client, submit

SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
# The ``client`` fixture runs the app's lifespan, whose end disposes of the engine (and so closes the
# pooled connections the other browsers of a test used).
pytestmark = pytest.mark.usefixtures("client")


@contextlib.contextmanager
def browser(app: FastAPI) -> Iterator[TestClient]:
    """Another browser (own cookie jar) on the running app."""
    c = TestClient(app)
    try:
        yield c
    finally:
        c.close()


def test_a_planted_csrf_cookie_cannot_forge_staff_actions(app: FastAPI, client: TestClient) -> None:
    """Defect 9: the attacker takes a ``bcc_csrf`` cookie and its form token from their own visit,
    plants the cookie in an admin's browser (a sibling subdomain can) and makes the browser post."""
    code = submit(client)
    rid = report_id(app, code)
    attacker = TestClient(app)
    attacker_token = csrf(attacker)
    planted = attacker.cookies["bcc_csrf"]
    admin = staff_client(app, "admin")
    admin.cookies.set("bcc_csrf", planted)
    r = admin.post(
        f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": attacker_token}, follow_redirects=False
    )
    assert r.status_code == 401
    with runtime_of(app).sessions() as db:
        assert db.scalars(select(Report.status).where(Report.id == rid)).one() == "submitted"
    # the admin's own form (the session's token) still works in the same browser
    r = admin.post(
        f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": csrf(admin, "/staf")}, follow_redirects=False
    )
    assert r.status_code == 303
    # and a public form, which carries the cookie token, still works for a logged-in staff member
    assert submit(admin).startswith("BJ-")
    attacker.close()
    admin.close()


def _password_step(client: TestClient, who: Login) -> None:
    r = client.post(
        "/staf/masuk",
        data={"csrf_token": csrf(client, "/staf/masuk"), "username": who.username, "password": who.password},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/staf/2fa"), r.text


def test_operator_enrols_a_second_factor_then_needs_it(app: FastAPI, clock: FakeClock) -> None:
    who = add_user(app, "operator", enrol=False)
    c = TestClient(app)
    _password_step(c, who)
    # the password alone opens nothing but the second-factor page
    assert c.get("/konsol", follow_redirects=False).status_code == 303
    assert c.get("/staf", follow_redirects=False).headers["location"].startswith("/staf/masuk")
    page = c.get("/staf/2fa")
    match = SECRET_RE.search(page.text)
    assert match and "otpauth://totp/" in page.text
    totp = pyotp.TOTP(match.group(1))
    wrong = c.post("/staf/2fa", data={"csrf_token": csrf(c, "/staf/2fa"), "code": "000000"})
    assert wrong.status_code == 401
    r = c.post("/staf/2fa", data={"csrf_token": csrf(c, "/staf/2fa"), "code": totp.at(clock.now())})
    assert r.status_code == 200 and r.template.name == "staff/recovery_codes.html"
    codes: list[str] = r.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    with runtime_of(app).sessions() as db:  # stored hashed only
        hashes = set(db.scalars(select(RecoveryCode.code_hash)))
    assert len(hashes) == 10 and not any(code.replace("-", "") in hashes for code in codes)
    assert c.get("/konsol").status_code == 200
    c.close()

    # the next login: the same code (same 30 s step) is not accepted twice; the next step's is
    d = TestClient(app)
    _password_step(d, who)
    replay = d.post("/staf/2fa", data={"csrf_token": csrf(d, "/staf/2fa"), "code": totp.at(clock.now())})
    assert replay.status_code == 401
    clock.advance(seconds=30)
    r = d.post(
        "/staf/2fa",
        data={"csrf_token": csrf(d, "/staf/2fa"), "code": totp.at(clock.now())},
        follow_redirects=False,
    )
    assert r.status_code == 303 and d.get("/konsol").status_code == 200
    d.close()

    # a lost phone: a recovery code works once
    for expected in (303, 401):
        e = TestClient(app)
        _password_step(e, who)
        r = e.post(
            "/staf/2fa",
            data={"csrf_token": csrf(e, "/staf/2fa"), "recovery": codes[0].upper()},
            follow_redirects=False,
        )
        assert r.status_code == expected
        e.close()


def test_an_admin_account_without_second_factor_is_not_logged_in_by_its_password(app: FastAPI) -> None:
    who = add_user(app, "admin", enrol=False)
    c = TestClient(app)
    _password_step(c, who)
    token = csrf(c, "/staf/2fa")
    r = c.post(f"/staf/laporan/{1}/verifikasi", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 401  # a pending session is no login
    c.close()


def test_failed_logins_are_throttled_per_account(app: FastAPI, clock: FakeClock) -> None:
    who = add_user(app, "viewer")
    for _ in range(10):  # each from a fresh browser, as a distributed guesser would
        with browser(app) as c:
            data = {"csrf_token": csrf(c, "/staf/masuk"), "username": who.username, "password": "x" * 12}
            assert c.post("/staf/masuk", data=data).status_code == 401
    with browser(app) as c:
        data = {"csrf_token": csrf(c, "/staf/masuk"), "username": who.username, "password": who.password}
        assert c.post("/staf/masuk", data=data).status_code == 429  # even the right password
        other = add_user(app, "viewer")  # other accounts are not affected
        login(c, other)
    clock.advance(minutes=15, seconds=1)
    with browser(app) as c:
        login(c, who)


def test_wrong_second_factor_codes_count_against_the_account(app: FastAPI) -> None:
    who = add_user(app, "operator")
    for _ in range(10):
        with browser(app) as c:
            _password_step(c, who)
            r = c.post("/staf/2fa", data={"csrf_token": csrf(c, "/staf/2fa"), "code": "123456"})
            assert r.status_code == 401
    with browser(app) as c:
        data = {"csrf_token": csrf(c, "/staf/masuk"), "username": who.username, "password": who.password}
        assert c.post("/staf/masuk", data=data).status_code == 429


def _user_id(app: FastAPI, username: str) -> int:
    with runtime_of(app).sessions() as db:
        return db.scalars(select(User.id).where(User.username == username)).one()


def test_admin_deactivates_reactivates_and_resets(app: FastAPI, clock: FakeClock) -> None:
    admin = staff_client(app, "admin")
    who = add_user(app, "agency", agency="bappeda")
    victim = TestClient(app)
    login(victim, who)
    uid = _user_id(app, who.username)
    token = csrf(admin, "/staf/akun")
    assert admin.post(f"/staf/akun/{uid}/nonaktif", data={"csrf_token": token}).status_code == 200
    # its session ended and it cannot log in
    assert victim.get("/staf", follow_redirects=False).status_code == 303
    data = {"csrf_token": csrf(victim, "/staf/masuk"), "username": who.username, "password": who.password}
    assert victim.post("/staf/masuk", data=data).status_code == 401
    assert "nonaktif" in admin.get("/staf/akun").text
    admin.post(f"/staf/akun/{uid}/aktif", data={"csrf_token": token})
    login(victim, who)
    # a password reset: shown once to the admin, the account's sessions end, the old password fails
    r = admin.post(f"/staf/akun/{uid}/sandi", data={"csrf_token": token})
    new_password = r.context["password"]
    assert new_password in r.text and len(new_password) >= 12
    assert victim.get("/staf", follow_redirects=False).status_code == 303
    data["password"] = who.password
    data["csrf_token"] = csrf(victim, "/staf/masuk")
    assert victim.post("/staf/masuk", data=data).status_code == 401
    login(victim, Login(who.username, new_password, who.role))
    # an admin may not deactivate their own account
    me = _user_id(app, admin.get("/staf").context["staff"].username)
    assert admin.post(f"/staf/akun/{me}/nonaktif", data={"csrf_token": token}).status_code == 409
    # other roles see none of it
    assert victim.get("/staf/akun").status_code == 403
    victim.close()
    admin.close()


def test_admin_resets_a_second_factor(app: FastAPI) -> None:
    admin = staff_client(app, "admin")
    who = add_user(app, "operator")
    uid = _user_id(app, who.username)
    r = admin.post(f"/staf/akun/{uid}/2fa", data={"csrf_token": csrf(admin, "/staf/akun")})
    assert r.status_code == 200
    with browser(app) as c:
        _password_step(c, who)
        assert SECRET_RE.search(c.get("/staf/2fa").text)  # enrols anew
    admin.close()


def test_change_own_password(app: FastAPI) -> None:
    who = add_user(app, "viewer")
    here, elsewhere = TestClient(app), TestClient(app)
    login(here, who)
    login(elsewhere, who)
    token = csrf(here, "/staf/sandi")
    new = "a-new-password-of-length"
    wrong = here.post(
        "/staf/sandi", data={"csrf_token": token, "current": "x" * 12, "password": new, "repeat": new}
    )
    assert wrong.status_code == 400 and wrong.context["error"] == "pw_wrong_current"
    short = here.post(
        "/staf/sandi",
        data={"csrf_token": token, "current": who.password, "password": "short", "repeat": "short"},
    )
    assert short.status_code == 400
    r = here.post(
        "/staf/sandi", data={"csrf_token": token, "current": who.password, "password": new, "repeat": new}
    )
    assert r.status_code == 200 and r.context["done"] is True
    assert here.get("/staf").status_code == 200  # this session stays
    assert elsewhere.get("/staf", follow_redirects=False).status_code == 303  # the others end
    login(elsewhere, Login(who.username, new, who.role))
    here.close()
    elsewhere.close()
