"""Who may use the console: only ``operator`` and ``admin``; every control is CSRF-protected.

These run without a broker (no MQTT settings): a command then fails at once as ``device_unavailable``
and is still audited, so nothing here needs the room.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.portal_app import csrf, staff_client
from tests.support.portal_routes import api_routes, guards
from tests.support.stack import portal_app

COMMAND = {"action": "circuit", "target": "lights_a.relay_1", "value": "ON", "name": "night"}


@pytest.fixture
def app(tmp_path: Path, sqlite_template: Path) -> FastAPI:
    return portal_app(tmp_path, sqlite_template, None)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def console_routes(app: FastAPI) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path, methods, route in api_routes(app):
        if path.startswith("/konsol"):
            [guard] = guards(route)
            assert guard.roles == {"admin", "operator"}, path
            out.extend((m, path.replace("{transaction}", "console-0")) for m in sorted(methods))
    assert len(out) == 10, out  # with /konsol/kesehatan-alarm (alarm health)
    return out


def audit_count(app: FastAPI) -> int:
    admin = staff_client(app, "admin")
    rows = admin.get("/konsol/audit.csv").text.strip().splitlines()
    admin.close()
    return len(rows) - 1


def test_anonymous_viewer_and_agency_are_refused(app: FastAPI, client: TestClient) -> None:
    routes = console_routes(app)
    for method, path in routes:
        data = {"csrf_token": csrf(client, "/staf/masuk"), **COMMAND} if method == "POST" else None
        r = client.request(method, path, data=data, follow_redirects=False)
        assert r.status_code == (303 if method == "GET" else 401), (method, path, r.status_code)
        if method == "GET":
            assert r.headers["location"] == f"/staf/masuk?next={path}"
    for role in ("viewer", "agency"):
        c = staff_client(app, role, agency="bappeda" if role == "agency" else None)
        token = csrf(c, "/staf")  # the session's own token (the cookie token would act anonymously)
        for method, path in routes:
            data = {"csrf_token": token, **COMMAND} if method == "POST" else None
            r = c.request(method, path, data=data, follow_redirects=False)
            assert r.status_code == 403, (role, method, path, r.status_code)
        assert "/konsol" not in c.get("/staf").text  # no link to what the role cannot use
        c.close()
    assert audit_count(app) == 0


def test_operator_needs_the_csrf_token(app: FastAPI) -> None:
    c = staff_client(app, "operator")
    page = c.get("/konsol")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/konsol" in c.get("/staf").text
    token = page.context["csrf_token"]
    assert c.post("/konsol/perintah", data=COMMAND).status_code == 403
    assert c.post("/konsol/perintah", data={**COMMAND, "csrf_token": "x" * 64}).status_code == 403
    other = staff_client(app, "operator")  # another session's token is no good either
    other_token = other.get("/konsol").context["csrf_token"]
    other.close()
    assert c.post("/konsol/perintah", data={**COMMAND, "csrf_token": other_token}).status_code == 403
    assert audit_count(app) == 0
    r = c.post("/konsol/perintah", data={**COMMAND, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/konsol#perintah"  # works without JavaScript
    c.close()
    assert audit_count(app) == 1


def test_without_broker_a_command_fails_at_once_and_is_audited(app: FastAPI) -> None:
    c = staff_client(app, "operator")
    token = c.get("/konsol").context["csrf_token"]
    r = c.post(
        "/konsol/perintah", data={**COMMAND, "csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert r.status_code == 202
    [cmd] = r.json()["commands"]
    status = c.get(f"/konsol/perintah/{cmd['transaction']}").json()
    assert status["status"] == "device_unavailable" and "not connected" in status["error"]
    page = c.get("/konsol").text
    assert cmd["transaction"] in page and "gagal: perangkat tidak tersedia" in page
    assert c.get("/konsol/perintah/console-unknown").status_code == 404
    c.close()


def test_audit_filters_and_csv(app: FastAPI) -> None:
    op1 = staff_client(app, "operator")
    op2 = staff_client(app, "admin")
    for c, target in ((op1, "lights_a.relay_1"), (op2, "lights_b.relay_2"), (op2, "lights_b.relay_3")):
        token = c.get("/konsol").context["csrf_token"]
        data = {"csrf_token": token, "action": "circuit", "target": target, "value": "ON"}
        assert c.post("/konsol/perintah", data=data, follow_redirects=False).status_code == 303
    everything = op1.get("/konsol/audit.csv")
    assert everything.headers["content-type"].startswith("text/csv")
    assert len(everything.text.strip().splitlines()) == 4
    only_b = op1.get("/konsol/audit.csv", params={"device": "lights_b"}).text.strip().splitlines()
    assert len(only_b) == 3 and all("lights_b" in row for row in only_b[1:])
    user2 = op2.get("/konsol/audit").context["rows"][0].username
    page = op1.get("/konsol/audit", params={"username": user2})
    assert page.context["total"] == 2
    assert op1.get("/konsol/audit", params={"status": "ok"}).context["total"] == 0
    assert op1.get("/konsol/audit", params={"since": "2999-01-01"}).context["total"] == 0
    assert op1.get("/konsol/audit", params={"until": "2999-01-01"}).context["total"] == 3
    assert op1.get("/konsol/audit", params={"since": "garbage"}).status_code == 200
    # the last representable day, and digits of another script: a filter or none, never a 500
    for params in ({"until": "9999-12-31"}, {"until": "２０２６-１１-０２"}, {"since": "0001-01-01"}):
        page = op1.get("/konsol/audit", params=params)
        assert page.status_code == 200 and page.context["total"] == 3
        assert len(op1.get("/konsol/audit.csv", params=params).text.strip().splitlines()) == 4
    assert op1.get("/konsol/audit", params={"since": "9999-12-31"}).context["total"] == 0
    op1.close()
    op2.close()
