"""Lighthouse on the citizen pages against a live portal (issue #18): performance >= 0.95,
accessibility 1.00, best practices >= 0.96, SEO >= 0.95 (mobile profile, Debian's Chromium), and the
report form under 100 KB transferred. Pages and thresholds: tests/support/lighthouse.py. Reports are
kept in ``artifacts/lighthouse/`` (git-ignored)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient

from portal.db import make_engine, upgrade
from portal.main import create_app
from tests.support.lighthouse import FORM_MAX_BYTES, PAGES, THRESHOLDS, audit, ensure_installed
from tests.support.paths import ROOT
from tests.support.portal_app import LiveServer, csrf, make_settings, report_id, staff_client, submit

ARTIFACTS = ROOT / "artifacts" / "lighthouse"


async def test_lighthouse_scores_of_the_citizen_pages(tmp_path: Path) -> None:
    await asyncio.to_thread(ensure_installed)
    settings = make_settings(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = create_app(settings)
    with LiveServer(app) as server:
        # a verified report, so that the status page and the public list show one
        with TestClient(app) as citizen:
            code = submit(citizen, lat="3.6001", lon="98.4854")
        admin = staff_client(app, "admin")
        admin.post(
            f"/staf/laporan/{report_id(app, code)}/verifikasi", data={"csrf_token": csrf(admin, "/staf")}
        )
        admin.close()
        results = {}
        for name, path in PAGES.items():
            results[name] = await audit(server.url + path.format(code=code), ARTIFACTS / name)
    low = {
        name: (r.scores, r.failed)
        for name, r in results.items()
        if any(r.scores[c] < limit for c, limit in THRESHOLDS.items())
    }
    assert low == {}
    assert results["form"].transferred < FORM_MAX_BYTES, results["form"].transferred
