"""Reporters' personal data on staff pages: the contact-view access log and redaction of the text."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from portal.models import ContactView, Redaction
from portal.runtime import runtime_of
from tests.support.portal_app import csrf, report_id, staff_client, submit


def _dispatch(admin: TestClient, rid: int) -> None:
    token = csrf(admin, "/staf")  # the queue shows no contact details; nor do the unfollowed redirects
    for action, data in (("verifikasi", {}), ("disposisi", {"agency": "bappeda"})):
        r = admin.post(
            f"/staf/laporan/{rid}/{action}", data={"csrf_token": token, **data}, follow_redirects=False
        )
        assert r.status_code == 303


def test_every_view_of_contact_details_is_logged_for_admins(app: FastAPI, client: TestClient) -> None:
    public = report_id(app, submit(client))
    anonymous = report_id(app, submit(client, privacy="anonymous"))
    admin = staff_client(app, "admin")
    agency = staff_client(app, "agency", agency="bappeda")
    for rid in (public, anonymous):
        _dispatch(admin, rid)
    assert "081234567890" in agency.get(f"/staf/laporan/{public}").text
    assert "081234567890" not in agency.get(f"/staf/laporan/{anonymous}").text  # not shown: not logged
    assert "081234567890" in admin.get(f"/staf/laporan/{anonymous}").text
    with runtime_of(app).sessions() as db:
        views = [(v.report_id, v.username.split("_")[0]) for v in db.scalars(select(ContactView))]
    assert sorted(views) == sorted([(public, "agency"), (anonymous, "admin")])
    log = admin.get(f"/staf/akses-kontak?laporan={public}")
    assert log.status_code == 200
    assert [(v.report_id, code) for v, code in log.context["rows"]] == [(public, log.context["rows"][0][1])]
    assert "agency_" in log.text
    assert agency.get("/staf/akses-kontak").status_code == 403
    admin.close()
    agency.close()


def test_staff_redact_personal_data_and_only_admins_see_the_original(
    app: FastAPI, client: TestClient
) -> None:
    text = "Tetangga saya Budi Santoso NIK 1275012345670001 membuang sampah ke parit setiap malam."
    code = submit(client, description=text)
    rid = report_id(app, code)
    admin = staff_client(app, "admin")
    agency = staff_client(app, "agency", agency="bappeda")
    _dispatch(admin, rid)
    token = csrf(agency, f"/staf/laporan/{rid}")
    missing = agency.post(
        f"/staf/laporan/{rid}/samarkan", data={"csrf_token": token, "field": "description", "phrases": "Joko"}
    )
    assert missing.status_code == 400
    r = agency.post(
        f"/staf/laporan/{rid}/samarkan",
        data={"csrf_token": token, "field": "description", "phrases": "Budi Santoso\n1275012345670001"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    public_page = client.get(f"/laporan/{code}").text
    assert "Budi Santoso" not in public_page and "1275012345670001" not in public_page
    assert "[disamarkan]" in public_page
    assert "Budi Santoso" not in agency.get(f"/staf/laporan/{rid}").text  # the original: admins only
    admin_page = admin.get(f"/staf/laporan/{rid}")
    assert "Budi Santoso" in admin_page.text
    assert [e.kind for e in admin_page.context["report"].entries][-1] == "redacted"
    with runtime_of(app).sessions() as db:
        row = db.scalars(select(Redaction)).one()
    assert row.original == text and row.username.startswith("agency_") and row.field == "description"
    viewer = staff_client(app, "viewer")
    refused = viewer.post(
        f"/staf/laporan/{rid}/samarkan",
        data={"csrf_token": csrf(viewer, "/staf"), "field": "title", "phrases": "Drainase"},
    )
    assert refused.status_code == 403
    for c in (admin, agency, viewer):
        c.close()
