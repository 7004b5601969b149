"""Open311 GeoReport v2 conformance: our own checks plus the independent ``georeport`` client (PyPI).

``georeport`` 0.3.1 covers the GET methods in JSON and XML. No client on PyPI that runs on Python 3 can
POST (``three`` 0.8.0 and ``open311`` 1.1 are Python 2 code and fail at import), so POST is exercised
with plain form-encoded HTTP exactly as the spec describes it.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from georeport import GeoReport

from portal.runtime import runtime_of
from portal.services import reports
from tests.support.portal_app import API_KEY, FakeClock, LiveServer, csrf, jpeg, staff_client, submit

CONTACT_FIELDS = {"email", "phone", "first_name", "last_name", "device_id", "account_id", "contact_name"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


def post(client: TestClient, fmt: str = "json", **fields: str) -> tuple[int, str]:
    data = {
        "api_key": API_KEY,
        "service_code": "kesehatan",
        "address_string": "Jl. Gatot Subroto, Kartini",
        "description": "Puskesmas tutup pada jam layanan.",
        "email": "warga@example.id",
        "first_name": "Budi",
        "last_name": "Santoso",
        "phone": "08123456789",
        **fields,
    }
    r = client.post(f"/open311/v2/requests.{fmt}", data=data)
    return r.status_code, r.text


def verify_all(app: FastAPI) -> None:
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    with runtime_of(app).sessions() as db:
        from sqlalchemy import select

        from portal.models import Report

        ids = list(db.scalars(select(Report.id).where(Report.status == "submitted")))
    for rid in ids:
        admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.close()


def test_post_requires_a_valid_api_key_and_answers_spec_errors(client: TestClient) -> None:
    status, body = post(client, api_key="")
    assert status == 403 and '"code": 403' in body and "api_key" in body
    status, body = post(client, "xml", api_key="wrong")
    root = ET.fromstring(body)
    assert status == 403 and root.tag == "errors" and root.find("error/code").text == "403"  # type: ignore[union-attr]
    assert post(client, service_code="nope")[0] == 404
    assert post(client, address_string="")[0] == 400  # no location at all
    assert post(client, address_string="somewhere unknown")[0] == 400  # no kelurahan


def test_post_json_and_xml_return_an_id_never_a_token(client: TestClient) -> None:
    status, body = post(client, **{"attribute[kelurahan]": "tangsi", "attribute[title]": "Puskesmas"})
    assert status == 200
    import json

    (item,) = json.loads(body)
    assert item["service_request_id"].startswith("BJ-") and "token" not in item
    status, body = post(
        client, "xml", lat="3.6001", long="98.4854", address_string="", **{"attribute[kelurahan]": "kartini"}
    )
    assert status == 200
    assert ET.fromstring(body).find("request/service_request_id") is not None


def test_post_media_is_cleaned_like_web_photos_and_shown_as_media_url(
    app: FastAPI, client: TestClient
) -> None:
    import io
    import json

    from PIL import Image

    data = {
        "api_key": API_KEY,
        "service_code": "kesehatan",
        "address_string": "Jl. Gatot Subroto, Kartini",
        "description": "Genangan di depan puskesmas.",
        "media_url": "http://169.254.169.254/latest/meta-data/",  # never fetched
    }
    r = client.post(
        "/open311/v2/requests.json", data=data, files=[("media", ("hp.jpg", jpeg(gps=True), "image/jpeg"))]
    )
    assert r.status_code == 200, r.text
    code = json.loads(r.text)[0]["service_request_id"]
    with runtime_of(app).sessions() as db:
        report = reports.get_by_code(db, code)
        (photo,) = report.photos
        assert report.source == "open311"
    stored = client.get(f"/foto/{photo.filename}")
    assert stored.status_code == 200
    assert not Image.open(io.BytesIO(stored.content)).getexif()  # EXIF and GPS gone
    verify_all(app)
    (item,) = client.get(f"/open311/v2/requests/{code}.json").json()
    assert item["media_url"].endswith(f"/foto/{photo.filename}")

    # not an image by content (whatever the declared type), and too many files: spec errors, no report
    before = client.get("/open311/v2/requests.json").json()
    r = client.post(
        "/open311/v2/requests.json",
        data=data,
        files=[("media", ("x.jpg", b"MZ\x90 not a jpeg", "image/jpeg"))],
    )
    assert r.status_code == 400
    assert json.loads(r.text)[0]["description"].startswith("Invalid: media (")  # and the reason
    r = client.post(
        "/open311/v2/requests.xml",
        data=data,
        files=[("media", (f"{n}.jpg", jpeg(), "image/jpeg")) for n in range(4)],
    )
    assert r.status_code == 400 and ET.fromstring(r.text).find("error/code").text == "400"  # type: ignore[union-attr]
    with runtime_of(app).sessions() as db:
        from sqlalchemy import func, select

        from portal.models import Report

        assert db.scalar(select(func.count()).select_from(Report).where(Report.source == "open311")) == 1
    assert len(client.get("/open311/v2/requests.json").json()) == len(before)


@pytest.fixture
def server(app: FastAPI) -> object:
    with LiveServer(app) as live:
        yield live


def test_independent_client_reads_services_and_definitions(server: LiveServer) -> None:
    for fmt in ("json", "xml"):
        client = GeoReport(f"{server.url}/open311/v2", jurisdiction="binjaikota.go.id", output_format=fmt)
        services = client.get_service_list()
        codes = [s["service_code"] for s in services]
        assert codes == ["kesehatan", "perencanaan_pembangunan", "perizinan", "anggaran", "pengaduan_umum"]
        assert all(str(s["metadata"]).lower() == "true" for s in services)
        definition = client.get_service_definition("kesehatan")
        attributes = definition["attributes"]["attribute"] if fmt == "xml" else definition["attributes"]
        kel = next(a for a in attributes if a["code"] == "kelurahan")
        values = kel["values"]["value"] if fmt == "xml" else kel["values"]
        assert len(values) == 37 and str(kel["required"]).lower() == "true"


def test_independent_client_reads_requests_with_filters(
    app: FastAPI, client: TestClient, server: LiveServer, clock: FakeClock
) -> None:
    first = post(client, **{"attribute[kelurahan]": "tangsi"})
    submit(client, category="kesehatan", privacy="confidential")  # never listed
    verify_all(app)
    geo = GeoReport(f"{server.url}/open311/v2", output_format="json")
    rows = geo.get_service_requests()
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == REQUEST_FIELDS and not CONTACT_FIELDS & set(row)
    assert row["status"] == "open" and row["requested_datetime"].endswith("Z")
    assert "Budi" not in str(rows) and "warga@example.id" not in str(rows)
    code = row["service_request_id"]
    assert geo.get_service_request(code)["service_request_id"] == code
    assert geo.get_service_requests(status="closed") == []
    assert geo.get_service_requests(service_code="perizinan") == []
    assert len(geo.get_service_requests(service_code="perizinan,kesehatan")) == 1
    xml = GeoReport(f"{server.url}/open311/v2", output_format="xml").get_service_request(code)
    assert xml["service_request_id"] == code and "email" not in xml
    # Default window: the last 90 days.
    clock.advance(days=91)
    assert geo.get_service_requests() == []
    assert (
        len(geo.get_service_requests(start_date="2026-11-01T00:00:00Z", end_date="2026-12-01T00:00:00Z")) == 1
    )
    assert first[0] == 200


def test_get_errors_follow_the_spec(client: TestClient) -> None:
    r = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z")
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    assert client.get("/open311/v2/requests.json?status=pending").status_code == 400
    assert client.get("/open311/v2/services.json?jurisdiction_id=medan.go.id").status_code == 404
    assert client.get("/open311/v2/services/nope.xml").headers["content-type"] == "text/xml; charset=utf-8"
    assert client.get("/open311/v2/services.csv").status_code == 404
    assert client.get("/open311/v2/requests.json?start_date=yesterday").status_code == 400


def test_discovery_in_both_formats(client: TestClient) -> None:
    doc = client.get("/open311/discovery.json").json()
    assert {"changeset", "contact", "key_service", "endpoints"} <= set(doc)
    assert doc["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    root = ET.fromstring(client.get("/open311/discovery.xml").text)
    assert root.tag == "discovery" and root.find("endpoints/endpoint/formats/format") is not None


def test_closed_request_reports_close_time_and_resolution(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    code = submit(client)
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    with runtime_of(app).sessions() as db:
        rid = reports.get_by_code(db, code).id
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    clock.advance(hours=5)
    admin.post(f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": "rejected"})
    # Rejected reports leave the public list but stay readable by their (unguessable) id for the reporter.
    assert client.get("/open311/v2/requests.json").json() == []
    assert client.get(f"/open311/v2/requests/{code}.json").json()[0]["status_notes"] == "rejected"
    code2 = submit(client)
    with runtime_of(app).sessions() as db:
        rid2 = reports.get_by_code(db, code2).id
    admin.post(f"/staf/laporan/{rid2}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid2}/disposisi", data={"csrf_token": token})
    clock.advance(hours=1)
    admin.post(f"/staf/laporan/{rid2}/tutup", data={"csrf_token": token, "resolution": "needs_budget"})
    (row,) = client.get(f"/open311/v2/requests/{code2}.json").json()
    # a needs-budget report names its development proposal's stage (portal/services/proposals.py)
    assert row["status"] == "closed"
    assert row["status_notes"] == "needs_budget; usulan pembangunan: Diusulkan (proposed)"
    assert row["updated_datetime"] == (clock.now()).isoformat().replace("+00:00", "Z")
    assert row["agency_responsible"].startswith("Badan Perencanaan")
    admin.close()


# Every C0 control XML 1.0 forbids (all but tab, line feed, carriage return), as pasted text carries them.
CONTROLS = "".join(chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r")


def test_control_characters_never_break_the_xml(app: FastAPI, client: TestClient) -> None:
    """Typed in (form and Open311): dropped at input. Already stored (before that, or by any other
    way in): the XML writer drops them too. A strict XML parser reads every answer."""
    status, body = post(
        client,
        description=f"Lampu\x1b[31m mati{CONTROLS}\tdi gang\r\nsebelah",
        **{"attribute[kelurahan]": "tangsi"},
    )
    assert status == 200, body
    by_api = json.loads(body)[0]["service_request_id"]
    by_form = submit(client, title="Jalan\x0brusak", description="Lubang\x07 besar\x1f di jalan")
    stored = submit(client, title="Sudah tersimpan")
    verify_all(app)
    with runtime_of(app).sessions() as db:
        assert reports.get_by_code(db, by_api).description == "Lampu[31m mati\tdi gang\r\nsebelah"
        form_report = reports.get_by_code(db, by_form)
        assert (form_report.title, form_report.description) == ("Jalanrusak", "Lubang besar di jalan")
        old = reports.get_by_code(db, stored)
        old.description = f"Disimpan{CONTROLS}dulu"  # as an earlier version stored it
        old.address = "Jl.\x0cMawar"
        db.commit()
    listing = client.get("/open311/v2/requests.xml")
    assert listing.status_code == 200
    root = ET.fromstring(listing.content)  # raises on any character XML 1.0 forbids
    texts = {r.findtext("service_request_id"): r.findtext("description") for r in root.iter("request")}
    assert texts[stored] == "Disimpandulu" and texts[by_form] == "Lubang besar di jalan"
    single = ET.fromstring(client.get(f"/open311/v2/requests/{stored}.xml").content)
    assert single.findtext("request/address", "").startswith("Jl.Mawar")
    assert (
        client.get(f"/open311/v2/requests/{stored}.json").json()[0]["description"]
        == f"Disimpan{CONTROLS}dulu"
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("end_date=0001-01-01T00:00:00Z", 200),  # a window that ends where the calendar starts
        ("start_date=9999-12-31T00:00:00Z", 200),  # and one that starts where it ends
        ("end_date=0001-01-01T00:00:00%2B07:00", 400),  # no UTC equivalent
        ("start_date=2026-11-01T00:00:00Z&end_date=9999-12-31T23:59:59-14:00", 400),  # nor here
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_extreme_dates_are_answered_not_a_server_error(
    client: TestClient, query: str, status: int, fmt: str
) -> None:
    r = client.get(f"/open311/v2/requests.{fmt}?{query}")
    assert r.status_code == status, r.text
    if status == 200:
        assert (r.json() if fmt == "json" else [*ET.fromstring(r.content)]) == []
    elif fmt == "json":
        assert "_date must be a W3C datetime" in r.json()[0]["description"]
    else:
        assert "_date must be a W3C datetime" in (
            ET.fromstring(r.content).findtext("error/description") or ""
        )


def test_service_request_id_finds_what_the_single_lookup_finds(app: FastAPI, client: TestClient) -> None:
    """Defect: ``requests.json?service_request_id=CODE`` answered nothing for a fresh (unverified)
    report that ``requests/CODE.json`` returned, so a client polling its own requests saw nothing."""
    fresh = submit(client)
    secret = submit(client, privacy="confidential")
    single = client.get(f"/open311/v2/requests/{fresh}.json").json()
    filtered = client.get(f"/open311/v2/requests.json?service_request_id={fresh},{secret}").json()
    assert filtered == single and [r["service_request_id"] for r in filtered] == [fresh]
    assert client.get(f"/open311/v2/requests/{secret}.json").status_code == 404  # never a confidential one
    assert fresh not in {r["service_request_id"] for r in client.get("/open311/v2/requests.json").json()}
