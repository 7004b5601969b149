"""Security requirements of issue 5, checked against the real route table (nothing skipped by hand)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from portal.config import Settings
from portal.main import create_app
from portal.models import RateHit, Report
from portal.runtime import runtime_of
from portal.services import reports
from portal.web.deps import RoleGuard
from tests.support.portal_app import (
    FakeClock,
    LiveServer,
    add_user,
    csrf,
    jpeg,
    login,
    make_settings,
    report_form,
    staff_client,
    submit,
)
from tests.support.portal_routes import api_routes, guards

ROLES = ("admin", "agency", "kepala_dinas", "operator", "viewer")
HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options")


def staff_routes(app: FastAPI) -> list[tuple[str, str, RoleGuard]]:
    out: list[tuple[str, str, RoleGuard]] = []
    for path, methods, route in api_routes(app):
        # the login flow: password, second factor (its own guard: a pending session), logout
        if path.startswith("/staf") and path not in ("/staf/masuk", "/staf/2fa", "/staf/keluar"):
            found = guards(route)
            assert len(found) == 1, f"{path} has no role guard"
            out.extend((method, path, found[0]) for method in sorted(methods))
    assert len(out) >= 9
    return out


def _path(path: str, report_id: int) -> str:
    return path.replace("{report_id}", str(report_id)).replace("{user_id}", "1")


def _dispatched_report(app: FastAPI, client: TestClient) -> int:
    code = submit(client)
    admin = staff_client(app, "admin")
    with runtime_of(app).sessions() as db:
        rid = reports.get_by_code(db, code).id
    token = csrf(admin, "/staf")
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token, "agency": "bappeda"})
    admin.close()
    return rid


def test_every_staff_route_rejects_anonymous_and_wrong_roles(app: FastAPI, client: TestClient) -> None:
    rid = _dispatched_report(app, client)
    routes = staff_routes(app)
    for method, path, _guard in routes:
        data = {"csrf_token": csrf(client)} if method == "POST" else None
        r = client.request(method, _path(path, rid), data=data, follow_redirects=False)
        assert r.status_code in ((303,) if method == "GET" else (401,)), (method, path, r.status_code)
        if method == "GET":
            assert r.headers["location"].startswith("/staf/masuk")
    for role in ROLES:
        c = staff_client(app, role, agency="bappeda" if role in ("agency", "kepala_dinas") else None)
        token = csrf(c, "/staf")  # the session's own token (the cookie token would act anonymously)
        for method, path, guard in routes:
            if role in guard.roles:
                continue
            r = c.request(method, _path(path, rid), data={"csrf_token": token} if method == "POST" else None)
            assert r.status_code == 403, (role, method, path, r.status_code)
        c.close()


def state_changing_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (m, path)
        for path, methods, _route in api_routes(app)
        if not path.startswith("/open311")
        for m in methods
        if m in ("POST", "PUT", "PATCH", "DELETE")
    ]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_csrf_missing_or_wrong_is_403_everywhere(app: FastAPI, client: TestClient, token: str | None) -> None:
    rid = _dispatched_report(app, client)
    code = submit(client)
    login(client, add_user(app, "admin"))
    routes = state_changing_routes(app)
    assert len(routes) >= 9
    for method, path in routes:
        target = _path(path, rid).replace("{code}", code)
        data: dict[str, Any] = {**report_form(), "body": "x", "reason": "x", "resolution": "rejected"}
        if token:
            data["csrf_token"] = token
        r = client.request(method, target, data=data, follow_redirects=False)
        assert r.status_code == 403, (method, path, r.status_code)


def test_stored_xss_is_escaped_everywhere(app: FastAPI, client: TestClient) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    code = submit(client, title=payload, description=payload, address=payload, contact_name=payload)
    admin = staff_client(app, "admin")
    with runtime_of(app).sessions() as db:
        rid = reports.get_by_code(db, code).id
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": csrf(admin, "/staf")})
    pages = [
        client.get(f"/laporan/{code}"),
        client.get("/daftar"),
        admin.get("/staf"),
        admin.get(f"/staf/laporan/{rid}"),
    ]
    for page in pages:
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text
    admin.close()


def test_security_headers_on_pages_errors_and_photos(app: FastAPI, settings: Settings) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom-for-test", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        code = submit(c, photos=[jpeg()])
        photo = c.get(f"/laporan/{code}").context["report"].photos[0].filename
        responses = [
            c.get("/"),
            c.get("/lapor"),
            c.get("/nope"),
            c.get("/boom-for-test"),
            c.get(f"/foto/{photo}"),
            c.post("/lapor", data={}),
            c.get("/open311/v2/requests/BJ-2222-2222-2222.json"),
        ]
        assert [r.status_code for r in responses] == [200, 200, 404, 500, 200, 403, 404]
        for r in responses:
            for name in HEADERS:
                assert name in r.headers, (r.url, name)
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        img = responses[4]
        assert (
            img.headers["content-type"] == "image/jpeg"
            and "sandbox" in img.headers["content-security-policy"]
        )
        assert c.get("/foto/../portal.db").status_code == 404


def _raw_request(port: int, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send headers and then the chunks until the server answers; returns what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        for chunk in body_chunks:
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        return data


def test_20_mb_upload_refused_413_before_the_body_is_read(app: FastAPI, settings: Settings) -> None:
    with LiveServer(app) as server:
        # Declared 20 MB: the answer comes before a single body byte is sent.
        head = (
            b"POST /lapor HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 20971520\r\n\r\n"
        )
        assert _raw_request(server.port, head, []).startswith(b"HTTP/1.1 413")
        # Chunked, no Content-Length: cut off at the cap, long before 20 MB have been sent.
        head = (
            b"POST /lapor HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 65536
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        part = b'--b\r\nContent-Disposition: form-data; name="photos"; filename="big.jpg"\r\n\r\n'
        first = b"%x\r\n%s\r\n" % (len(part), part)
        count = settings.max_body_bytes // len(chunk) + 8  # a little over the cap, far below 20 MB
        answer = _raw_request(server.port, head, [first] + [framed] * count)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"content-security-policy" in answer.lower()


def test_polyglot_and_svg_uploads_are_refused(client: TestClient) -> None:
    polyglot = jpeg() + b"<html><script>alert(1)</script></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
    for name, data, ctype in (
        ("p.jpg", polyglot, "image/jpeg"),
        ("s.svg", svg, "image/svg+xml"),
        ("s.jpg", svg, "image/jpeg"),
        ("g.gif", b"GIF89a" + b"\0" * 20, "image/gif"),
    ):
        r = client.post(
            "/lapor",
            data={"csrf_token": csrf(client), **report_form()},
            files=[("photos", (name, data, ctype))],
        )
        assert r.status_code == 400, name
        assert r.context["errors"] == {"photos": "photo_bad_type"}


def test_stored_photos_carry_no_exif(client: TestClient, settings: Settings) -> None:
    original = jpeg(gps=True)
    assert Image.open(__import__("io").BytesIO(original)).getexif()
    code = submit(client, photos=[original, jpeg(fmt="WEBP")])
    stored = client.get(f"/laporan/{code}").context["report"].photos
    for photo in stored:
        assert re.fullmatch(r"[0-9a-f]{32}\.jpg", photo.filename)
        path = Path(settings.media_dir) / photo.filename
        with Image.open(path) as img:
            assert img.format == "JPEG" and not img.getexif() and "exif" not in img.info
        assert b"Exif" not in path.read_bytes() and b"PhoneMaker" not in path.read_bytes()


def test_rate_limit_answers_429_then_recovers(portal_db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    app = create_app(
        make_settings(portal_db_url, tmp_path, submissions_per_hour=2),
        clock=clock.now,
    )
    with TestClient(app) as c:
        submit(c)
        submit(c)
        r = c.post("/lapor", data={"csrf_token": csrf(c), **report_form()})
        assert r.status_code == 429 and r.template.name == "error.html"
        assert "Terlalu banyak laporan" in r.text and "content-security-policy" in r.headers
        clock.advance(hours=1, seconds=1)
        submit(c)


def test_rate_limits_are_shared_by_every_worker(portal_db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    """Two portal processes (two apps on one database) count the same hits: submissions and logins."""
    settings = make_settings(portal_db_url, tmp_path, submissions_per_hour=3)
    one, two = create_app(settings, clock=clock.now), create_app(settings, clock=clock.now)
    with TestClient(one) as a, TestClient(two) as b:
        submit(a)
        submit(b, photos=[jpeg()])
        submit(a)
        media = set(Path(settings.media_dir).iterdir())
        for c in (a, b):
            r = c.post("/lapor", data={"csrf_token": csrf(c), **report_form()})
            assert r.status_code == 429
        # a refused submission with a photo is refused before the photo is processed or stored
        r = b.post(
            "/lapor",
            data={"csrf_token": csrf(b), **report_form()},
            files=[("photos", ("p.jpg", jpeg(), "image/jpeg"))],
        )
        assert r.status_code == 429 and set(Path(settings.media_dir).iterdir()) == media
        with runtime_of(one).sessions() as db:
            assert db.scalar(select(func.count()).select_from(Report)) == 3

        for i in range(20):  # the login limit: 20 attempts per 15 minutes, whichever worker answers
            c = (a, b)[i % 2]
            # a different account each time: the per-account limit (10 failures) is tested on its own
            r = c.post(
                "/staf/masuk",
                data={"csrf_token": csrf(c, "/staf/masuk"), "username": f"x{i}", "password": "y"},
            )
            assert r.status_code == 401
        r = a.post(
            "/staf/masuk", data={"csrf_token": csrf(a, "/staf/masuk"), "username": "x", "password": "y"}
        )
        assert r.status_code == 429

        clock.advance(hours=1, seconds=1)  # the window has passed; expired hits are cleaned up
        submit(b)
        with runtime_of(one).sessions() as db:
            hits = db.execute(select(RateHit.scope, RateHit.at)).all()
        assert sorted(scope for scope, _ in hits).count("submit") == 1  # the old ones were deleted
        assert all(at == clock.now() for scope, at in hits if scope == "submit")


def test_nul_bytes_are_refused_before_reaching_the_database(client: TestClient) -> None:
    assert client.get("/daftar?kelurahan=a%00b").status_code == 400
    r = client.post("/lapor", data={"csrf_token": csrf(client), **report_form(title="a\x00b")})
    assert r.status_code == 400
    assert client.get("/open311/v2/requests.json?status=open%00").json()[0]["code"] == 400
