"""The report form's fast path (portal.web.fastpath) answers plain submissions exactly as the route does,
and hands everything else to the framework: proven by comparing each answer with an app that has no
fast path, and by recording which path stored each submission."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from portal.config import Settings
from portal.main import create_app
from portal.models import Report
from portal.runtime import PortalRuntime, runtime_of
from portal.web import public, submission
from portal.web.fastpath import ReportFastPath
from tests.support.portal_app import FakeClock, csrf, jpeg, report_form

CODE = re.compile(r"/laporan/([A-Z0-9-]+)\?baru=1$")


def without_fast_path(app: FastAPI) -> FastAPI:
    # Starlette types ``cls`` as a factory protocol, which mypy does not see a class as overlapping
    app.user_middleware = [m for m in app.user_middleware if cast(object, m.cls) is not ReportFastPath]
    return app


@pytest.fixture
def pair(settings: Settings, clock: FakeClock) -> Iterator[tuple[TestClient, TestClient]]:
    """The same portal twice (one database): with the fast path, and framework only."""
    fast = create_app(settings, clock=clock.now)
    plain = without_fast_path(create_app(settings, clock=clock.now))
    with TestClient(fast) as a, TestClient(plain) as b:
        yield a, b


def stored(app: FastAPI, code: str) -> dict[str, object]:
    with runtime_of(app).sessions() as db:
        report = db.scalars(select(Report).where(Report.code == code)).one()
        skip = {"id", "code", "created_at", "updated_at", "verify_due", "secret_hash"}
        row = {c.key: getattr(report, c.key) for c in Report.__table__.columns if c.key not in skip}
        return {**row, "has_key": report.secret_hash is not None and len(report.secret_hash) == 64}


def test_a_plain_submission_gets_the_same_answer_and_row_on_both_paths(
    pair: tuple[TestClient, TestClient],
) -> None:
    answers = []
    for client in pair:
        data = {"csrf_token": csrf(client), **report_form(privacy="anonymous", lat="3.6", lon="98.48")}
        r = client.post("/lapor", data={**data, "remember": "1"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        match = CODE.search(r.headers["location"])
        assert match is not None
        answers.append((r, match.group(1)))
    (fast, fast_code), (plain, plain_code) = answers
    assert fast_code != plain_code
    # the same headers (names, and values but for the code in the location and the remembered codes)
    assert sorted(fast.headers.keys()) == sorted(plain.headers.keys())
    for name in fast.headers:
        if name not in ("location", "set-cookie"):
            assert fast.headers[name] == plain.headers[name], name
    assert "bcc_mine=" + fast_code in fast.headers["set-cookie"]
    assert "bcc_mine=" + plain_code in plain.headers["set-cookie"]
    assert "bcc_keys=" + fast_code + ":" in fast.headers["set-cookie"]  # both keep the reporter's key
    assert "bcc_keys=" + plain_code + ":" in plain.headers["set-cookie"]
    assert fast.content == plain.content
    app = pair[0].app
    assert isinstance(app, FastAPI)
    assert stored(app, fast_code) == stored(app, plain_code)
    # the status page of the fast path's report is the ordinary one
    page = pair[0].get(f"/laporan/{fast_code}")
    assert page.status_code == 200 and "Drainase tersumbat" in page.text


@pytest.mark.parametrize(
    "case",
    ["wrong_csrf", "no_csrf", "invalid", "honeypot", "nul", "english_invalid"],
)
def test_refusals_are_the_routes_own_answers(pair: tuple[TestClient, TestClient], case: str) -> None:
    results = []
    for client in pair:
        data = {"csrf_token": csrf(client), **report_form()}
        path = "/lapor"
        if case == "wrong_csrf":
            data["csrf_token"] = "x" * 64
        elif case == "no_csrf":
            del data["csrf_token"]
        elif case == "invalid":
            data.update(title="", kelurahan="atlantis", description="x" * 4001)
        elif case == "honeypot":
            data["website"] = "http://spam.example"
        elif case == "nul":
            data["title"] = "a\x00b"
        elif case == "english_invalid":
            data["category"] = "nope"
            path = "/lapor?lang=en"
        r = client.post(path, data=data, follow_redirects=False)
        results.append(r)
    fast, plain = results
    assert fast.status_code == plain.status_code and fast.status_code in (400, 403), fast.status_code
    assert re.sub(r'value="[^"]{40,}"', "", fast.text) == re.sub(r'value="[^"]{40,}"', "", plain.text)
    if case == "english_invalid":
        assert "Choose a category" in fast.text or "category" in fast.text.lower()
    for client in pair:
        app = client.app
        assert isinstance(app, FastAPI)
        with runtime_of(app).sessions() as db:
            assert db.scalars(select(Report)).all() == []  # a refusal stores nothing


def test_over_the_limit_both_paths_answer_429(settings: Settings, clock: FakeClock) -> None:
    limited = settings.model_copy(update={"submissions_per_hour": 1})
    for fast_path in (True, False):
        app = create_app(limited, clock=clock.now)
        with TestClient(app if fast_path else without_fast_path(app)) as client:
            data = {"csrf_token": csrf(client), **report_form()}
            first = client.post("/lapor", data=data, follow_redirects=False)
            second = client.post("/lapor", data=data, follow_redirects=False)
            assert (first.status_code, second.status_code) == (303, 429), fast_path
            assert "<h1>" in second.text  # the portal's own error page
        clock.advance(hours=2)  # the same client address: a new window for the other app


def test_only_plain_submissions_take_the_fast_path(
    settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which path stored each submission: the framework's router marks the request's scope with the
    endpoint it chose; the fast path calls the route's code without routing."""
    seen: list[str] = []
    real = submission.submit_form

    async def spy(runtime: PortalRuntime, request: Request, form: FormData) -> Response:
        seen.append("route" if request.scope.get("endpoint") is public.submit_report else "fast")
        return await real(runtime, request, form)

    monkeypatch.setattr(submission, "submit_form", spy)
    with TestClient(create_app(settings, clock=clock.now)) as client:
        token = csrf(client)
        plain = client.post("/lapor", data={"csrf_token": token, **report_form()}, follow_redirects=False)
        invalid = client.post("/lapor", data={"csrf_token": token, **report_form(title="")})
        photo = client.post(
            "/lapor",
            data={"csrf_token": token, **report_form()},
            files=[("photos", ("p.jpg", jpeg(), "image/jpeg"))],
            follow_redirects=False,
        )
        client.cookies.set("bcc_session", "not-a-session")
        staff = client.post("/lapor", data={"csrf_token": token, **report_form()}, follow_redirects=False)
    assert [plain.status_code, invalid.status_code, photo.status_code, staff.status_code] == [
        303,
        400,
        303,
        303,
    ]
    assert seen == ["fast", "fast", "route", "route"]
    assert without_fast_path(create_app(settings, clock=clock.now)).user_middleware  # others stay
