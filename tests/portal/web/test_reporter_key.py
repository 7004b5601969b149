"""The reporter's key and confidential reports: only the submitter acts on a report, a confidential
report is invisible to everyone else (page, "Laporan saya", photos, duplicate links), reports stored
before keys are claimed by the browser that remembered them, and every public write is rate-limited."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from portal.main import create_app
from portal.models import Report
from portal.runtime import runtime_of
from tests.support.portal_app import (
    API_KEY,
    FakeClock,
    csrf,
    jpeg,
    make_settings,
    report_form,
    report_id,
    staff_client,
    submit,
)

KEY_LINK = re.compile(r"http://testserver/laporan/(BJ-[0-9A-Z-]+)/kunci/([A-Za-z0-9_-]{32})")


def stored(app: FastAPI, code: str) -> Report:
    with runtime_of(app).sessions() as db:
        report = db.scalar(select(Report).where(Report.code == code))
        assert report is not None
        db.expunge(report)
        return report


def key_link(client: TestClient, code: str) -> str:
    """The key link the submitter's page shows right after submission."""
    page = client.get(f"/laporan/{code}?baru=1")
    found = KEY_LINK.search(page.text)
    assert found and found.group(1) == code, page.text
    return found.group(0)


def stranger(app: FastAPI) -> TestClient:
    return TestClient(app)


def reporter_forms(page_text: str, code: str) -> set[str]:
    return {a for a in ("info", "buka", "nilai", "privasi") if f'action="/laporan/{code}/{a}"' in page_text}


def test_the_key_is_shown_once_to_the_submitter_and_stored_only_as_a_hash(
    app: FastAPI, client: TestClient
) -> None:
    code = submit(client)
    link = key_link(client, code)
    key = link.rsplit("/", 1)[1]
    assert len(key) == 32
    row = stored(app, code)
    assert row.secret_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr({c.name: getattr(row, c.name) for c in Report.__table__.columns})
    assert key not in client.get(f"/laporan/{code}").text  # later visits do not show it again
    cookie = client.cookies.get("bcc_keys") or ""
    assert f"{code}:{key}" in cookie
    # the browser that submitted sees the reporter's forms; the code alone gives none of them
    assert reporter_forms(client.get(f"/laporan/{code}").text, code) >= {"info", "privasi"}
    other = stranger(app)
    page = other.get(f"/laporan/{code}")
    assert page.status_code == 200 and reporter_forms(page.text, code) == set()
    assert f'action="/laporan/{code}/kunci"' in page.text
    other.close()


def test_reporter_actions_need_the_key_not_just_the_public_code(app: FastAPI, client: TestClient) -> None:
    """Defect: knowing the public code was enough to add text under "Pelapor", make a report
    confidential (censorship), rate or reopen it."""
    code = submit(client)
    other = stranger(app)
    token = csrf(other)
    before = stored(app, code)
    for action, data in [
        ("info", {"body": "Bukan dari pelapor"}),
        ("privasi", {"privacy": "confidential"}),
        ("nilai", {"verdict": "unsolved"}),
        ("buka", {"reason": "Belum selesai"}),
    ]:
        r = other.post(
            f"/laporan/{code}/{action}", data={"csrf_token": token, **data}, follow_redirects=False
        )
        assert r.status_code == 403, (action, r.status_code)
        assert r.context["errors"] == {"kunci": "err_reporter_key"}
    after = stored(app, code)
    assert (after.privacy, after.updated_at, after.feedback) == (before.privacy, before.updated_at, None)
    with runtime_of(app).sessions() as db:
        assert [e.kind for e in db.get(Report, before.id).entries] == ["created"]  # type: ignore[union-attr]

    # a wrong key (typed or in a link) opens nothing and sets nothing
    r = other.post(
        f"/laporan/{code}/kunci", data={"csrf_token": token, "kunci": "x" * 32}, follow_redirects=False
    )
    assert r.status_code == 404 and "bcc_keys" not in other.cookies
    assert other.get(f"/laporan/{code}/kunci/{'A' * 32}", follow_redirects=False).status_code == 404

    link = key_link(client, code)
    # the reporter's link opens it on another device: kept in a cookie, the URL left without the key
    r = other.get(link.removeprefix("http://testserver"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/laporan/{code}"
    set_cookie = r.headers["set-cookie"].lower()
    assert set_cookie.startswith("bcc_keys=") and "httponly" in set_cookie and "samesite=lax" in set_cookie
    r = other.post(
        f"/laporan/{code}/info", data={"csrf_token": token, "body": "Foto menyusul"}, follow_redirects=False
    )
    assert r.status_code == 303
    # or typed: the whole link pasted works as well as the key alone
    third = stranger(app)
    r = third.post(
        f"/laporan/{code}/kunci", data={"csrf_token": csrf(third), "kunci": link}, follow_redirects=False
    )
    assert r.status_code == 303 and code in (third.cookies.get("bcc_keys") or "")
    other.close()
    third.close()


def test_key_cookie_is_secure_when_the_portal_says_so(
    portal_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(make_settings(portal_db_url, tmp_path, cookie_secure=True), clock=clock.now)
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/lapor", data={"csrf_token": csrf(c), **report_form()}, follow_redirects=False)
        assert r.status_code == 303
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("bcc_keys="))
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()


def test_a_confidential_report_is_404_for_everyone_but_its_reporter(app: FastAPI, client: TestClient) -> None:
    """Defect: GET /laporan/{code} showed a confidential report's title, text, history and photos to
    anyone; "Laporan saya" showed the title of any code put in its (unsigned) cookie."""
    code = submit(client, privacy="confidential", title="Pungli di kantor kelurahan")
    mine = client.get(f"/laporan/{code}")
    assert mine.status_code == 200 and "Pungli" in mine.text
    other = stranger(app)
    unknown = other.get("/laporan/BJ-2222-3333-4444")
    page = other.get(f"/laporan/{code}")
    assert page.status_code == unknown.status_code == 404 and "Pungli" not in page.text
    other.cookies.set("bcc_mine", code)  # a forged "Laporan saya" list
    assert "Pungli" not in other.get("/lacak").text
    assert other.post(f"/laporan/{code}/ingat", data={"csrf_token": csrf(other)}).status_code == 404
    r = other.post(f"/laporan/{code}/info", data={"csrf_token": csrf(other), "body": "x"})
    assert r.status_code == 404
    other.close()


def test_photos_of_a_report_made_confidential_are_no_longer_served(app: FastAPI, client: TestClient) -> None:
    """Defect: the photos stayed public at URLs Open311 had already published."""
    code = submit(client, photos=[jpeg()])
    name = stored_photo(app, code)
    other = stranger(app)
    assert other.get(f"/foto/{name}").status_code == 200
    r = client.post(f"/laporan/{code}/privasi", data={"csrf_token": csrf(client), "privacy": "confidential"})
    assert r.status_code == 200
    assert other.get(f"/foto/{name}").status_code == 404
    assert client.get(f"/foto/{name}").status_code == 200  # the reporter still sees them
    admin = staff_client(app, "admin")
    assert admin.get(f"/foto/{name}").status_code == 200  # and the staff who handle it
    viewer = staff_client(app, "viewer")
    assert viewer.get(f"/foto/{name}").status_code == 404
    for c in (other, admin, viewer):
        c.close()


def test_confidential_photos_only_for_the_agency_the_report_was_dispatched_to(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    """Any agency officer could load a confidential report's photo by its file name; now only the
    officers and the head (kepala_dinas) of the agency it was dispatched to (as for the report's page),
    and admins. (The head, who may open the report, was refused its photos: review item 3.)"""
    code = submit(client, photos=[jpeg()], privacy="confidential", category="kesehatan")
    name = stored_photo(app, code)
    dinkes, bappeda = staff_client(app, "agency", "dinkes"), staff_client(app, "agency", "bappeda")
    head, other_head = (
        staff_client(app, "kepala_dinas", "dinkes"),
        staff_client(app, "kepala_dinas", "bappeda"),
    )
    try:
        assert dinkes.get(f"/foto/{name}").status_code == 404  # not dispatched yet
        assert head.get(f"/foto/{name}").status_code == 404
        with runtime_of(app).sessions() as db:
            db.execute(
                update(Report).where(Report.code == code).values(agency="dinkes", dispatched_at=clock.now())
            )
            db.commit()
        assert (
            head.get(f"/staf/laporan/{report_id(app, code)}").status_code == 200
        )  # the head may open the report
        assert dinkes.get(f"/foto/{name}").status_code == 200
        assert head.get(f"/foto/{name}").status_code == 200  # and now its photos
        assert bappeda.get(f"/foto/{name}").status_code == 404
        assert other_head.get(f"/foto/{name}").status_code == 404
    finally:
        for c in (dinkes, bappeda, head, other_head):
            c.close()


def stored_photo(app: FastAPI, code: str) -> str:
    with runtime_of(app).sessions() as db:
        report = db.scalar(select(Report).where(Report.code == code))
        assert report is not None and report.photos
        return report.photos[0].filename


def close_as_duplicate(app: FastAPI, code: str, original: str, verify: bool = False) -> None:
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    rid = report_id(app, code)
    if verify:
        admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    r = admin.post(
        f"/staf/laporan/{rid}/tutup",
        data={"csrf_token": token, "resolution": "duplicate", "duplicate_code": original},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    admin.close()


def test_a_duplicate_of_a_confidential_report_does_not_publish_its_code(
    app: FastAPI, client: TestClient
) -> None:
    """Defect: closing a report as duplicate of a confidential one linked the confidential code on the
    duplicate's public page."""
    secret = submit(client, privacy="confidential")
    public = submit(client)
    close_as_duplicate(app, public, secret, verify=True)
    other = stranger(app)
    page = other.get(f"/laporan/{public}")
    assert page.status_code == 200 and secret not in page.text
    assert "Laporan asal bersifat rahasia" in page.text
    # a public original is still linked
    original = submit(client)
    third = submit(client)
    close_as_duplicate(app, third, original, verify=True)
    assert f'href="/laporan/{original}"' in other.get(f"/laporan/{third}").text
    other.close()


def test_a_duplicate_closed_before_verification_is_not_published(app: FastAPI, client: TestClient) -> None:
    """Defect: a report closed as duplicate while still ``submitted`` (never verified) appeared on
    /daftar and Open311, since the rule treated "not submitted" as verified."""
    original = submit(client)
    dup = submit(client, title="Tidak pernah diverifikasi")
    close_as_duplicate(app, dup, original)
    assert "Tidak pernah diverifikasi" not in client.get("/daftar").text
    listed = client.get("/open311/v2/requests.json").json()
    assert dup not in {r["service_request_id"] for r in listed}


def test_reports_stored_before_keys_are_claimed_by_the_browser_that_remembered_them(
    app: FastAPI, client: TestClient
) -> None:
    """Migration 0007 leaves older reports without a key: the browser whose "Laporan saya" lists the
    code claims one (once); a browser without it acts on nothing; after the claim the cookie alone no
    longer suffices."""
    r = client.post(
        "/lapor", data={"csrf_token": csrf(client), **report_form(remember="1")}, follow_redirects=False
    )
    code = r.headers["location"].split("/")[2].split("?")[0]
    with runtime_of(app).sessions() as db:  # as stored before 0007
        db.execute(update(Report).where(Report.code == code).values(secret_hash=None))
        db.commit()
    client.cookies.delete("bcc_keys")
    stranger_without = stranger(app)
    r = stranger_without.post(
        f"/laporan/{code}/info", data={"csrf_token": csrf(stranger_without), "body": "x"}
    )
    assert r.status_code == 403
    page = client.get(f"/laporan/{code}")  # the remembering browser: a key is issued and shown
    assert page.status_code == 200 and reporter_forms(page.text, code) >= {"info"}
    found = KEY_LINK.search(page.text)
    assert found is not None and f"{code}:{found.group(2)}" in (client.cookies.get("bcc_keys") or "")
    assert stored(app, code).secret_hash == hashlib.sha256(found.group(2).encode()).hexdigest()
    r = client.post(
        f"/laporan/{code}/info", data={"csrf_token": csrf(client), "body": "Tambahan"}, follow_redirects=False
    )
    assert r.status_code == 303
    late = stranger(app)  # a forged or late "Laporan saya" cookie: the report has its key now
    late.cookies.set("bcc_mine", code)
    assert late.post(f"/laporan/{code}/info", data={"csrf_token": csrf(late), "body": "x"}).status_code == 403
    for c in (stranger_without, late):
        c.close()


def test_a_legacy_claim_made_by_a_refused_action_still_keeps_the_key(
    app: FastAPI, client: TestClient
) -> None:
    r = client.post(
        "/lapor", data={"csrf_token": csrf(client), **report_form(remember="1")}, follow_redirects=False
    )
    code = r.headers["location"].split("/")[2].split("?")[0]
    with runtime_of(app).sessions() as db:
        db.execute(update(Report).where(Report.code == code).values(secret_hash=None))
        db.commit()
    client.cookies.delete("bcc_keys")
    r = client.post(f"/laporan/{code}/info", data={"csrf_token": csrf(client), "body": ""})  # empty: 400
    assert r.status_code == 400 and KEY_LINK.search(r.text) is not None
    assert code in (client.cookies.get("bcc_keys") or "")
    r = client.post(
        f"/laporan/{code}/info", data={"csrf_token": csrf(client), "body": "Isi"}, follow_redirects=False
    )
    assert r.status_code == 303


def test_legacy_claims_can_be_switched_off(portal_db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    app = create_app(make_settings(portal_db_url, tmp_path, legacy_reporter_claims=False), clock=clock.now)
    with TestClient(app) as c:
        r = c.post(
            "/lapor", data={"csrf_token": csrf(c), **report_form(remember="1")}, follow_redirects=False
        )
        code = r.headers["location"].split("/")[2].split("?")[0]
        with runtime_of(app).sessions() as db:
            db.execute(update(Report).where(Report.code == code).values(secret_hash=None))
            db.commit()
        c.cookies.delete("bcc_keys")
        assert c.post(f"/laporan/{code}/info", data={"csrf_token": csrf(c), "body": "x"}).status_code == 403
        assert stored(app, code).secret_hash is None


def test_check_similar_sends_nothing_typed_in_a_url(app: FastAPI, client: TestClient) -> None:
    """Defect: the "check similar reports" button submitted the whole form by GET, so name, phone and
    e-mail landed in the URL, the browser history and the access log."""
    page = client.get("/lapor").text
    button = re.search(r"<button[^>]*formaction=\"([^\"]+)\"[^>]*formmethod=\"([^\"]+)\"", page)
    assert button is not None and button.groups() == ("/lapor/serupa", "post")
    existing = submit(client)
    admin = staff_client(app, "admin")
    admin.post(
        f"/staf/laporan/{report_id(app, existing)}/verifikasi", data={"csrf_token": csrf(admin, "/staf")}
    )
    admin.close()
    r = client.post("/lapor/serupa", data={"csrf_token": csrf(client), **report_form()})
    assert r.status_code == 200 and str(r.url).endswith("/lapor/serupa")
    assert [s.code for s in r.context["similar"]] == [existing]
    assert r.context["form"].contact_name == "Siti Aminah"  # kept as typed
    assert client.post("/lapor/serupa", data=report_form()).status_code == 403  # CSRF checked


@pytest.fixture
def limited(portal_db_url: str, tmp_path: Path, clock: FakeClock) -> FastAPI:
    return create_app(make_settings(portal_db_url, tmp_path, public_writes_per_hour=3), clock=clock.now)


def test_every_public_write_is_rate_limited_per_address(limited: FastAPI, clock: FakeClock) -> None:
    """Defect: add info, reopen, rate and raise privacy had no rate limit (nor Open311 POST)."""
    with TestClient(limited) as c:
        code = submit(c)
        token = csrf(c)
        for i in range(3):
            r = c.post(
                f"/laporan/{code}/info", data={"csrf_token": token, "body": f"{i}"}, follow_redirects=False
            )
            assert r.status_code == 303
        writes = [
            (f"/laporan/{code}/info", {"body": "lagi"}),
            (f"/laporan/{code}/buka", {"reason": "x"}),
            (f"/laporan/{code}/nilai", {"verdict": "solved"}),
            (f"/laporan/{code}/privasi", {"privacy": "anonymous"}),
            (f"/laporan/{code}/ingat", {}),
            (f"/laporan/{code}/kunci", {"kunci": "x"}),
            ("/lapor/serupa", report_form()),
        ]
        for path, data in writes:
            assert c.post(path, data={"csrf_token": token, **data}).status_code == 429, path
        assert c.get(f"/laporan/{code}/kunci/{'A' * 32}").status_code == 429
        r = c.post(
            "/open311/v2/requests.json",
            data={
                "api_key": API_KEY,
                "service_code": "kesehatan",
                "address_string": "Tangsi",
                "description": "x",
            },
        )
        assert r.status_code == 429 and "Too many" in r.text
        clock.advance(hours=1, seconds=1)  # the window moves on
        r = c.post(
            f"/laporan/{code}/info", data={"csrf_token": token, "body": "nanti"}, follow_redirects=False
        )
        assert r.status_code == 303
