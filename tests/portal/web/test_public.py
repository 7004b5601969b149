"""Public pages: which template rendered with which context, and the citizen's whole journey."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.runtime import runtime_of
from tests.support.portal_app import (
    FakeClock,
    add_user,
    csrf,
    jpeg,
    login,
    report_form,
    report_id,
    staff_client,
    submit,
)


def test_home_lists_categories_in_indonesian_by_default(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.template.name == "home.html"
    assert r.context["lang"] == "id"
    keys = [c.key for c in r.context["categories"]]
    assert keys == ["kesehatan", "perencanaan_pembangunan", "perizinan", "anggaran", "pengaduan_umum"]
    assert 'lang="id"' in r.text


def test_english_is_chosen_by_query_and_kept_in_a_cookie(client: TestClient) -> None:
    r = client.get("/lapor?lang=en")
    assert r.context["lang"] == "en"
    assert "Make a report" in r.text
    assert client.get("/lapor").context["lang"] == "en"


def test_form_page_has_every_field_and_works_without_script(client: TestClient) -> None:
    r = client.get("/lapor")
    assert r.template.name == "report_form.html"
    for name in (
        "category",
        "title",
        "description",
        "kelurahan",
        "lat",
        "lon",
        "photos",
        "privacy",
        "contact_name",
        "contact_phone",
        "contact_email",
        "csrf_token",
        "website",
    ):
        assert f'name="{name}"' in r.text, name
    # a plain form posted to /lapor; the web app's one deferred script only adds to it, no inline code
    assert '<form action="/lapor" method="post" enctype="multipart/form-data"' in r.text
    assert re.findall(r"<script[^>]*>", r.text) == [
        '<script src="/static/app.js" defer>',
        '<script type="application/json" id="app-text">',
    ]


def test_submit_redirects_to_status_page_with_code(client: TestClient) -> None:
    code = submit(client, photos=[jpeg()])
    assert code.startswith("BJ-") and len(code) == 17
    r = client.get(f"/laporan/{code}?baru=1")
    assert r.template.name == "status.html"
    ctx = r.context
    assert ctx["new"] is True and ctx["report"].code == code
    assert [e.kind for e in ctx["entries"]] == ["created"]
    assert len(ctx["report"].photos) == 1
    assert "Siti" not in r.text and "081234567890" not in r.text  # contact never shown to the public
    assert (
        client.get(f"/lacak?kode={code.lower().replace('-', ' ')}", follow_redirects=False).headers[
            "location"
        ]
        == f"/laporan/{code}"
    )


def test_validation_errors_are_listed_in_the_users_language(client: TestClient) -> None:
    data = {
        "csrf_token": csrf(client),
        **report_form(
            title="", kelurahan="atlantis", description="x" * 4001, contact_email="nope", lat="1", lon="2"
        ),
    }
    r = client.post("/lapor", data=data)
    assert r.status_code == 400
    assert r.template.name == "report_form.html"
    assert set(r.context["errors"]) == {"title", "kelurahan", "description", "contact_email", "lat"}
    assert "Judul wajib diisi." in r.text
    r = client.post("/lapor?lang=en", data={**data, "csrf_token": csrf(client)})
    assert "A title is required." in r.text


def test_honeypot_refuses_silently(client: TestClient) -> None:
    r = client.post("/lapor", data={"csrf_token": csrf(client), **report_form(), "website": "http://spam"})
    assert r.status_code == 400
    assert r.context["errors"] == {"form": "err_form"}


def test_add_information_keeps_the_original_text(client: TestClient) -> None:
    code = submit(client)
    r = client.post(
        f"/laporan/{code}/info",
        data={"csrf_token": csrf(client), "body": "Sudah 3 minggu."},
        files=[("photos", ("x.png", jpeg(fmt="PNG"), "image/png"))],
        follow_redirects=False,
    )
    assert r.status_code == 303
    ctx = client.get(f"/laporan/{code}").context
    assert [e.kind for e in ctx["entries"]] == ["created", "info"]
    assert ctx["report"].description == report_form()["description"]
    assert len(ctx["report"].photos) == 1


def test_public_list_hides_confidential_unverified_and_rejected(app: FastAPI, client: TestClient) -> None:
    public = submit(client, title="Publik")
    secret = submit(client, title="Rahasia", privacy="confidential")
    unverified = submit(client, title="Belum")
    admin = staff_client(app, "admin")
    with runtime_of(app).sessions() as db:
        from portal.services import reports

        ids = {c: reports.get_by_code(db, c).id for c in (public, secret, unverified)}
    for code in (public, secret):
        admin.post(f"/staf/laporan/{ids[code]}/verifikasi", data={"csrf_token": csrf(admin, "/staf")})
    r = client.get("/daftar")
    assert r.template.name == "list.html"
    assert [x.code for x in r.context["reports"]] == [public]
    assert r.context["points"] == []  # no map point given  # type: ignore[attr-defined]
    assert "Siti" not in r.text and "siti@example.id" not in r.text
    admin.close()


def test_similar_reports_same_kelurahan_or_within_100_m(app: FastAPI, client: TestClient) -> None:
    near = submit(client, kelurahan="setia", lat="3.6000", lon="98.4850")
    same_kel = submit(client, kelurahan="tangsi")
    other_cat = submit(client, kelurahan="tangsi", category="kesehatan")
    admin = staff_client(app, "admin")
    with runtime_of(app).sessions() as db:
        from portal.services import reports

        for code in (near, same_kel, other_cat):
            rid = reports.get_by_code(db, code).id
            admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": csrf(admin, "/staf")})
    r = client.get("/lapor?category=perencanaan_pembangunan&kelurahan=tangsi&lat=3.6005&lon=98.4852")
    found = {x.code for x in r.context["similar"]}
    assert found == {near, same_kel}
    listed = client.get("/daftar").context["points"]
    assert (
        [p["report"].code for p in listed] == [near] and 0 < listed[0]["x"] < 400 and 0 < listed[0]["y"] < 600
    )
    far = client.get("/lapor?category=perencanaan_pembangunan&kelurahan=kartini&lat=3.62&lon=98.50")
    assert far.context["similar"] == []
    admin.close()


def test_reopen_within_14_days_of_resolution(app: FastAPI, client: TestClient, clock: FakeClock) -> None:
    code = submit(client)
    admin = staff_client(app, "admin")
    rid = report_id(app, code)
    token = csrf(admin, "/staf")
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token, "agency": ""})
    admin.post(f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": "resolved_direct"})
    clock.advance(days=13)
    assert client.get(f"/laporan/{code}").context["reopenable"] is True
    r = client.post(
        f"/laporan/{code}/buka",
        data={"csrf_token": csrf(client), "reason": "Masih banjir."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    ctx = client.get(f"/laporan/{code}").context
    assert ctx["report"].status == "dispatched" and ctx["entries"][-1].kind == "reopened"
    admin.close()
    admin = staff_client(app, "admin")  # the first session expired during the 13 days
    admin.post(
        f"/staf/laporan/{rid}/tutup",
        data={"csrf_token": csrf(admin, "/staf"), "resolution": "resolved_direct"},
    )
    clock.advance(days=15)
    r = client.post(f"/laporan/{code}/buka", data={"csrf_token": csrf(client), "reason": "Lagi."})
    assert r.status_code == 409
    assert r.context["errors"] == {"reason": "err_reopen_window"}
    admin.close()


def test_reporter_rates_a_closure_once_and_the_evaluation_counts_it(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    code = submit(client)
    admin = staff_client(app, "admin")
    rid = report_id(app, code)
    token = csrf(admin, "/staf")

    def close() -> None:
        r = admin.post(
            f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": "resolved_direct"}
        )
        assert r.status_code in (200, 303)

    assert client.get(f"/laporan/{code}").context["rateable"] is False
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token, "agency": ""})
    close()
    page = client.get(f"/laporan/{code}")
    assert page.context["rateable"] is True
    assert f'action="/laporan/{code}/nilai"' in page.text and "Apakah masalah" in page.text

    r = client.post(f"/laporan/{code}/nilai", data={"csrf_token": csrf(client), "verdict": "great"})
    assert r.status_code == 400 and r.context["errors"] == {"verdict": "err_verdict"}
    assert "Pilih salah satu penilaian." in r.text
    r = client.post(
        f"/laporan/{code}/nilai",
        data={"csrf_token": csrf(client), "verdict": "unsolved", "comment": "Masih <b>banjir</b>"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/laporan/{code}")
    ctx = page.context
    assert ctx["report"].feedback == "unsolved" and ctx["rateable"] is False
    assert ctx["entries"][-1].kind == "rated_unsolved" and ctx["entries"][-1].actor_label == "pelapor"
    assert "Masih &lt;b&gt;banjir&lt;/b&gt;" in page.text and "Belum selesai" in page.text
    again = client.post(f"/laporan/{code}/nilai", data={"csrf_token": csrf(client), "verdict": "solved"})
    assert again.status_code == 409
    assert again.context["errors"] == {"verdict": "err_feedback_closed"}

    # not solved: the reporter reopens; the next closure can be rated again, and only it counts
    client.post(f"/laporan/{code}/buka", data={"csrf_token": csrf(client), "reason": "Masih banjir."})
    assert client.get(f"/laporan/{code}").context["report"].feedback is None
    close()
    r = client.post(
        f"/laporan/{code}/nilai",
        data={"csrf_token": csrf(client), "verdict": "solved"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    total = admin.get("/staf/evaluasi?month=2026-11").context["total"]
    assert (total.rated_by_reporter, total.reporter_says_solved) == (1, 1)
    csv_text = admin.get("/staf/evaluasi.csv?month=2026-11").text
    assert csv_text.splitlines()[0].endswith(",rated_by_reporter,reporter_says_solved")

    # a verdict is possible for 30 days after a closure, not later
    other = submit(client)
    oid = report_id(app, other)
    admin.post(f"/staf/laporan/{oid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{oid}/tutup", data={"csrf_token": token, "resolution": "rejected"})
    admin.close()
    clock.advance(days=31)
    late = client.post(f"/laporan/{other}/nilai", data={"csrf_token": csrf(client), "verdict": "partly"})
    assert late.status_code == 409


def test_reporter_hides_name_then_the_report_and_can_never_loosen(app: FastAPI, client: TestClient) -> None:
    code = submit(client)  # public, from "Siti Aminah"
    admin = staff_client(app, "admin")
    rid = report_id(app, code)
    token = csrf(admin, "/staf")
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token, "agency": "bappeda"})
    officer = staff_client(app, "agency", agency="bappeda")
    assert "Siti Aminah" in officer.get(f"/staf/laporan/{rid}").text
    page = client.get(f"/laporan/{code}")
    assert page.context["stricter"] == ("anonymous", "confidential")
    assert f'action="/laporan/{code}/privasi"' in page.text

    r = client.post(
        f"/laporan/{code}/privasi",
        data={"csrf_token": csrf(client), "privacy": "anonymous"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Siti Aminah" not in officer.get(f"/staf/laporan/{rid}").text  # the agency no longer sees it
    assert "Siti Aminah" in admin.get(f"/staf/laporan/{rid}").text  # the admins still do
    assert [x.code for x in client.get("/daftar").context["reports"]] == [code]
    ctx = client.get(f"/laporan/{code}").context
    assert ctx["entries"][-1].kind == "to_anonymous" and ctx["stricter"] == ("confidential",)

    back = client.post(f"/laporan/{code}/privasi", data={"csrf_token": csrf(client), "privacy": "public"})
    assert back.status_code == 400
    assert back.context["errors"] == {"privacy": "err_privacy_stricter"}
    assert "lebih ketat" in back.text

    r = client.post(
        f"/laporan/{code}/privasi",
        data={"csrf_token": csrf(client), "privacy": "confidential"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/daftar").context["reports"] == []
    assert client.get(f"/open311/v2/requests/{code}.json").status_code == 404
    page = client.get(f"/laporan/{code}")  # the reporter still follows it by its code
    assert page.status_code == 200 and page.context["stricter"] == ()
    assert "/privasi" not in page.text
    officer.close()
    admin.close()


def mine(client: TestClient) -> list[str]:
    return [r.code for r in client.get("/lacak").context["mine"]]


def test_reports_are_remembered_on_this_device_only_when_asked(client: TestClient) -> None:
    plain = submit(client)
    assert "bcc_mine" not in client.cookies and mine(client) == []
    r = client.post(
        "/lapor", data={"csrf_token": csrf(client), **report_form(remember="1")}, follow_redirects=False
    )
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("bcc_mine=")).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    remembered = r.headers["location"].split("/")[2].split("?")[0]
    assert mine(client) == [remembered]
    assert "/ingat" not in client.get(f"/laporan/{remembered}").text  # already remembered

    # remembered later from its status page: newest first, shown with title and status
    assert "/ingat" in client.get(f"/laporan/{plain}").text
    r = client.post(f"/laporan/{plain}/ingat", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and mine(client) == [plain, remembered]
    page = client.get("/lacak")
    assert "Drainase tersumbat" in page.text and "Menunggu verifikasi" in page.text
    assert (
        client.post("/laporan/BJ-2222-3333-4444/ingat", data={"csrf_token": csrf(client)}).status_code == 404
    )

    r = client.post("/lacak/lupakan", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and mine(client) == []

    # a tampered cookie: anything that is not a known code is ignored, nothing is echoed
    client.cookies.set("bcc_mine", f"<script>x.BJ-2222-3333-4444.{remembered}")
    page = client.get("/lacak")
    assert mine(client) == [remembered] and "<script>x" not in page.text


def test_a_logged_in_staff_member_can_use_the_public_forms(app: FastAPI, client: TestClient) -> None:
    """Public pages carry the browser's cookie token even when a staff session exists (the browser
    test found a 403 here): the POST accepts it, and a wrong token is still refused."""
    login(client, add_user(app, "admin"))
    code = submit(client)
    token = csrf(client, f"/laporan/{code}")
    r = client.post(
        f"/laporan/{code}/info", data={"csrf_token": token, "body": "Tambahan."}, follow_redirects=False
    )
    assert r.status_code == 303
    assert (
        client.post(f"/laporan/{code}/info", data={"csrf_token": "x" * 64, "body": "Lagi."}).status_code
        == 403
    )


def test_unknown_code_is_404_page(client: TestClient) -> None:
    r = client.get("/laporan/BJ-2222-3333-4444")
    assert r.status_code == 404
    assert r.template.name == "error.html"
