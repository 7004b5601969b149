"""A month of reports that uses every outcome, made through the real forms (shared by the evaluation
tests): in the fake clock's month (2026-11) one report per resolution in the development-planning
category, one health report left open, and one health report in each of the two months before."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.portal_app import FakeClock, csrf, report_id, staff_client, submit

OUTCOMES = ("resolved_direct", "needs_budget", "rejected", "duplicate")


def fill_month(app: FastAPI, client: TestClient, clock: FakeClock) -> TestClient:
    """Returns a logged-in admin client (the caller closes it)."""
    start = clock.current
    for back in (2, 1):  # the trend: one report in each of the two months before
        clock.current = start - timedelta(days=31 * back)
        submit(client, category="kesehatan")
    clock.current = start
    admin = staff_client(app, "admin")
    token = csrf(admin, "/staf")
    first = submit(client)
    for resolution in OUTCOMES:
        code = first if resolution == "resolved_direct" else submit(client)
        rid = report_id(app, code)
        admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
        if resolution in ("resolved_direct", "needs_budget"):
            admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token})
            answer = {"csrf_token": token, "body": "Sudah ditangani."}
            admin.post(f"/staf/laporan/{rid}/tanggapan", data=answer)
        data = {"csrf_token": token, "resolution": resolution, "duplicate_code": first}
        r = admin.post(f"/staf/laporan/{rid}/tutup", data=data)
        assert r.status_code in (200, 303), r.text
    submit(client, category="kesehatan")  # still open
    return admin
