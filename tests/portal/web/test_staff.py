"""Staff pages: login, queue with deadline ages, verify -> dispatch -> respond -> close, evaluation + CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.services import workflow
from tests.support.portal_app import (
    FakeClock,
    LiveServer,
    add_user,
    csrf,
    login,
    report_id,
    staff_client,
    submit,
)


def test_login_sets_a_hardened_session_cookie(app: FastAPI, client: TestClient) -> None:
    who = add_user(app, "viewer")  # no second factor: the password opens the session
    bad = client.post(
        "/staf/masuk",
        data={
            "csrf_token": csrf(client, "/staf/masuk"),
            "username": who.username,
            "password": "wrong-password-123",
        },
    )
    assert bad.status_code == 401 and bad.context["failed"] is True
    r = client.post(
        "/staf/masuk",
        data={"csrf_token": csrf(client, "/staf/masuk"), "username": who.username, "password": who.password},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert "bcc_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/staf").template.name == "staff/queue.html"
    client.post("/staf/keluar", data={"csrf_token": csrf(client, "/staf")})
    assert client.get("/staf", follow_redirects=False).status_code == 303


def test_secure_cookie_flag_behind_tls(portal_db_url: str, tmp_path: object, clock: FakeClock) -> None:
    from pathlib import Path

    from portal.main import create_app
    from tests.support.portal_app import make_settings

    app = create_app(make_settings(portal_db_url, Path(str(tmp_path)), cookie_secure=True), clock=clock.now)
    who = add_user(app, "viewer")
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post(
            "/staf/masuk",
            data={"csrf_token": csrf(c, "/staf/masuk"), "username": who.username, "password": who.password},
            follow_redirects=False,
        )
        assert "Secure" in r.headers["set-cookie"]


def test_full_workflow_records_who_and_when(app: FastAPI, client: TestClient, clock: FakeClock) -> None:
    code = submit(client)
    rid = report_id(app, code)
    admin = staff_client(app, "admin")
    officer = staff_client(app, "agency", agency="bappeda")
    token = csrf(admin, "/staf")
    queue = admin.get("/staf")
    rows = queue.context["rows"]
    assert [r.code for r, _ in rows] == [code] and rows[0][1]["overdue"] is False
    # The agency sees nothing before dispatch.
    assert officer.get("/staf").context["result"].total == 0
    assert officer.get(f"/staf/laporan/{rid}").status_code == 404
    clock.advance(hours=1)
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(
        f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token, "agency": "", "note": "Mohon dicek"}
    )
    page = officer.get(f"/staf/laporan/{rid}")
    assert page.context["report"].agency == "bappeda"
    assert page.context["show_contact"] is True  # public report: the agency may contact the reporter  # type: ignore[attr-defined]
    clock.advance(hours=2)
    officer.post(
        f"/staf/laporan/{rid}/tanggapan",
        data={"csrf_token": csrf(officer, "/staf"), "body": "Akan dibersihkan."},
    )
    admin.post(
        f"/staf/laporan/{rid}/tutup",
        data={"csrf_token": token, "resolution": "needs_budget", "note": "Usulan 2027"},
    )
    page = admin.get(f"/staf/laporan/{rid}")
    report = page.context["report"]
    assert report.status == "closed" and report.resolution == "needs_budget"
    # the history reads as words, not as the stored kinds
    assert (
        "Diteruskan ke dinas" in page.text
        and "Laporan ditutup" in page.text
        and "dispatched" not in page.text
    )
    kinds = [(e.kind, e.actor.role if e.actor else None) for e in report.entries]
    assert kinds == [
        ("created", None),
        ("verified", "admin"),
        ("dispatched", "admin"),
        ("responded", "agency"),
        ("closed", "admin"),
    ]
    public = client.get(f"/laporan/{code}")
    assert "Badan Perencanaan Pembangunan Daerah (Bappeda)" in public.text  # reply under the agency's name
    assert "Akan dibersihkan." in public.text
    admin.close()
    officer.close()


def test_anonymous_reporter_is_hidden_from_the_agency(app: FastAPI, client: TestClient) -> None:
    rid = report_id(app, submit(client, privacy="anonymous"))
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    assert admin.get(f"/staf/laporan/{rid}").context["show_contact"] is True
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token})
    officer = staff_client(app, "agency", agency="bappeda")
    page = officer.get(f"/staf/laporan/{rid}")
    assert page.context["show_contact"] is False and "Siti" not in page.text
    admin.close()
    officer.close()


def test_duplicate_links_the_original_and_bad_transitions_are_refused(
    app: FastAPI, client: TestClient
) -> None:
    first, second = submit(client), submit(client)
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    r = admin.post(
        f"/staf/laporan/{report_id(app, second)}/tutup",
        data={"csrf_token": token, "resolution": "resolved_direct"},
    )
    assert r.status_code == 409 and r.context["error"] == "err_verify_first"
    r = admin.post(
        f"/staf/laporan/{report_id(app, second)}/tutup",
        data={"csrf_token": token, "resolution": "duplicate", "duplicate_code": "BJ-2222-2222-2222"},
    )
    assert r.status_code == 400
    admin.post(
        f"/staf/laporan/{report_id(app, second)}/tutup",
        data={"csrf_token": token, "resolution": "duplicate", "duplicate_code": first},
    )
    status = client.get(f"/laporan/{second}")
    assert status.context["report"].duplicate_of.code == first
    admin.close()


def test_queue_shows_overdue_against_three_working_days(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    submit(client)  # Monday 09:00 WIB: verification due Thursday 23:59:59 WIB
    viewer = add_user(app, "viewer")
    clock.advance(days=3, hours=14)  # Thursday 23:00 WIB
    login(client, viewer)
    assert client.get("/staf?overdue=1").context["result"].total == 0
    clock.advance(hours=2)
    rows = client.get("/staf?overdue=1").context["rows"]
    assert len(rows) == 1 and rows[0][1]["overdue"] is True


def test_queue_counts_up_to_a_cap_and_its_pages_keep_the_filters(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = [submit(client) for _ in range(3)]
    admin = staff_client(app, "admin")
    exact = admin.get("/staf").context["result"]
    assert (exact.total, exact.more) == (3, False)
    # the cap and the page size scaled down: 3 matches, counted up to 2, 2 per page
    monkeypatch.setattr(workflow, "COUNT_CAP", 2)
    monkeypatch.setattr(workflow, "PAGE_SIZE", 2)
    first = admin.get("/staf?min_age_days=0&category=perencanaan_pembangunan")
    result = first.context["result"]
    assert (result.total, result.more, len(result.reports)) == (2, True, 2)
    assert "Antrean laporan (2+)" in first.text
    link = re.search(r'<a href="\?([^"]+)">Berikutnya</a>', first.text)
    assert link is not None
    query = dict(parse_qsl(html.unescape(link.group(1)), keep_blank_values=True))
    assert query["min_age_days"] == "0" and query["page"] == "2"
    assert query["category"] == "perencanaan_pembangunan"
    second = admin.get("/staf?" + html.unescape(link.group(1)))
    shown = [r.code for r in second.context["result"].reports]
    assert len(shown) == 1 and shown[0] in codes
    assert "Berikutnya" not in second.text  # a short page is the last one


def test_monthly_evaluation_and_csv(app: FastAPI, client: TestClient, clock: FakeClock) -> None:
    codes = [submit(client), submit(client, category="kesehatan"), submit(client)]
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    for code, resolution in zip(codes, ("resolved_direct", "needs_budget", "rejected"), strict=True):
        rid = report_id(app, code)
        admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
        if resolution != "rejected":
            admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token})
        admin.post(f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": resolution})
    submit(client)  # still open
    page = admin.get("/staf/evaluasi?month=2026-11")
    assert page.template.name == "staff/evaluation.html"
    total = page.context["total"]
    assert (total.received, total.resolved_direct, total.needs_budget, total.rejected, total.still_open) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert total.verified_on_time == 3
    r = admin.get("/staf/evaluasi.csv?month=2026-11")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(row["category"], row["agency"], row["received"]) for row in rows} == {
        ("kesehatan", "dinkes", "1"),
        ("perencanaan_pembangunan", "bappeda", "3"),
    }
    assert admin.get("/staf/evaluasi?month=2026-10").context["rows"] == []
    admin.close()


BAD_MONTHS = [
    "２０２６-11",
    "2026-11\n",
    "2026-11\r\nX-Evil: 1",
    " 2026-11",
    "+2026-11",
    "2026-1",
    "2026-13",
    "0001-01",
]


def test_evaluation_month_is_validated_strictly(app: FastAPI, client: TestClient) -> None:
    """Full-width digits (int() takes them: a 500 in the CSV's file name header) and a trailing newline
    (the server dropped the connection) are refused with a clear 400, on a real server, in both
    languages; the page and the CSV alike. No month at all is the current one."""
    admin = staff_client(app, "admin")
    session = {"bcc_session": admin.cookies["bcc_session"]}
    with LiveServer(app) as live, httpx.Client(base_url=live.url, cookies=session) as http:
        for month in BAD_MONTHS:
            for path in ("/staf/evaluasi", "/staf/evaluasi.csv"):
                r = http.get(path, params={"month": month})
                assert r.status_code == 400, (month, path, r.status_code)
                assert "TTTT-BB" in r.text and "attachment" not in r.headers.get("content-disposition", "")
        r = http.get("/staf/evaluasi.csv", params={"month": "２０２６-11", "lang": "en"})
        assert r.status_code == 400 and "write YYYY-MM in plain digits" in r.text
        r = http.get("/staf/evaluasi.csv")
        assert r.status_code == 200 and 'filename="evaluasi-2026-11.csv"' in r.headers["content-disposition"]
    admin.close()


def test_staff_pages_warn_when_next_years_holiday_decree_is_missing(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    """The shipped holiday file has the 2026 decree, not 2027's: from 1 October staff see it on every
    page (deadlines around 2027's moveable holidays would be wrong); the public never does."""
    staff = staff_client(app, "viewer")
    try:
        warning = "tahun 2027 (SKB 3 Menteri) belum dimasukkan"
        assert clock.now().month == 11 and warning in staff.get("/staf").text
        assert warning in staff.get("/staf/evaluasi").text
        assert warning not in client.get("/").text
        clock.current = clock.current.replace(month=9, day=15)
        assert warning not in staff.get("/staf").text
    finally:
        staff.close()
