"""The portal's Prometheus metrics, in process: every answer counted by method, route template and
status class (a route that raises is a 5xx, the fast path and the body cap are counted too), and the
latency histogram. Two worker processes adding up: tests/portal/test_workers.py."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.metrics import UNMATCHED
from portal.runtime import runtime_of
from tests.support.portal_app import submit


def count(app: FastAPI, method: str, route: str, status: str) -> float:
    registry = runtime_of(app).metrics.registry
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value("bcc_portal_http_requests_total", labels) or 0.0


def latency_count(app: FastAPI, method: str, route: str) -> float:
    registry = runtime_of(app).metrics.registry
    labels = {"method": method, "route": route}
    return registry.get_sample_value("bcc_portal_http_request_duration_seconds_count", labels) or 0.0


def test_a_route_that_raises_is_counted_as_5xx(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("the database went away")

    app.add_api_route("/rusak/{part}", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        for _ in range(3):
            r = c.get("/rusak/satu")
            assert r.status_code == 500  # the portal's own error page
        assert c.get("/").status_code == 200
    assert count(app, "GET", "/rusak/{part}", "5xx") == 3
    assert count(app, "GET", "/rusak/{part}", "2xx") == 0
    assert count(app, "GET", "/", "2xx") == 1
    assert latency_count(app, "GET", "/rusak/{part}") == 3


def test_templates_not_paths_and_unknown_paths_share_one_label(client: TestClient, app: FastAPI) -> None:
    for path in ("/tidak-ada/1", "/tidak-ada/2", "/laporan/BCC-0000-XXXX"):
        assert client.get(path).status_code == 404
    assert count(app, "GET", UNMATCHED, "4xx") == 2
    assert count(app, "GET", "/laporan/{code}", "4xx") == 1
    assert client.get("/staf/masuk").status_code == 200  # a router with a prefix
    assert count(app, "GET", "/staf/masuk", "2xx") == 1
    samples = runtime_of(app).metrics.registry.collect()
    routes = {s.labels["route"] for family in samples for s in family.samples if "route" in s.labels}
    assert not any("tidak-ada" in r or "BCC-0000" in r for r in routes), routes
    assert client.get("/static/portal.css").status_code == 200
    assert count(app, "GET", "/static/{path}", "2xx") == 1


def test_the_fast_path_and_the_body_cap_are_counted(client: TestClient, app: FastAPI) -> None:
    submit(client)  # answered by portal.web.fastpath, in front of the router
    assert count(app, "POST", "/lapor", "3xx") == 1
    cap = runtime_of(app).settings.max_body_bytes
    r = client.post("/lapor", content=b"x", headers={"content-length": str(cap + 1)})
    assert r.status_code == 413
    assert count(app, "POST", "/lapor", "4xx") == 1
    buckets = runtime_of(app).metrics.registry.get_sample_value(
        "bcc_portal_http_request_duration_seconds_bucket", {"method": "POST", "route": "/lapor", "le": "+Inf"}
    )
    assert buckets == 2
