"""The public visibility rule (portal.services.visibility): its SQL form and its predicate agree with the
rule as written (not confidential; listed only when an admin verified it once and not rejected) on both
databases, and
the staff queue of operators and viewers uses the same "not confidential" condition."""

from __future__ import annotations

import itertools

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from portal.models import PRIVACIES, RESOLUTIONS, STATUSES, Report
from portal.runtime import runtime_of
from portal.services import reports, visibility
from portal.services.events import NullSink
from tests.support.portal_app import FakeClock, staff_client


def test_sql_and_predicate_follow_the_rule_for_every_combination(app: FastAPI, clock: FakeClock) -> None:
    runtime = runtime_of(app)
    settings = runtime.settings
    policy = reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)
    # "verified" is whether an admin ever verified it (verified_at), not the status: a report closed
    # straight from ``submitted`` (as a duplicate, say) was never verified and must stay unlisted
    combos = list(itertools.product(PRIVACIES, STATUSES, (None, *RESOLUTIONS), (False, True)))
    with TestClient(app), runtime.sessions() as db:
        by_code = {}
        for privacy, status, resolution, verified in combos:
            inp = reports.ReportInput("kesehatan", "Judul", "Isi", "tangsi", privacy=privacy)
            created = reports.create_report(db, runtime.reference, inp, [], policy, NullSink(), clock.now())
            row = db.get(Report, created.id)
            assert row is not None
            row.status, row.resolution = status, resolution
            row.verified_at = clock.now() if verified else None
            by_code[created.code] = (privacy, status, resolution, verified)
        db.commit()
        listed_sql = set(db.scalars(select(Report.code).where(visibility.listed())))
        shown_sql = set(db.scalars(select(Report.code).where(visibility.not_confidential())))
        rows = list(db.scalars(select(Report)))
    assert len(rows) == len(combos)
    for report in rows:
        combo = privacy, status, resolution, verified = by_code[report.code]
        shown = privacy != "confidential"
        listed = shown and verified and resolution != "rejected"
        assert visibility.is_not_confidential(report) is shown, combo
        assert visibility.is_listed(report) is listed, combo
        assert (report.code in shown_sql) is shown, combo
        assert (report.code in listed_sql) is listed, combo
    assert listed_sql and listed_sql < shown_sql  # both levels hold some reports and differ


def test_operators_and_viewers_never_see_confidential_reports_in_the_queue(
    app: FastAPI, clock: FakeClock
) -> None:
    runtime = runtime_of(app)
    settings = runtime.settings
    policy = reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)
    with TestClient(app):
        with runtime.sessions() as db:
            titles = {}
            for privacy in PRIVACIES:
                title = f"Laporan {privacy}"
                inp = reports.ReportInput("kesehatan", title, "Isi", "tangsi", privacy=privacy)
                reports.create_report(db, runtime.reference, inp, [], policy, NullSink(), clock.now())
                titles[privacy] = title
        for role in ("operator", "viewer", "admin"):
            staff = staff_client(app, role)
            page = staff.get("/staf").text
            staff.close()
            for privacy, title in titles.items():
                expected = role == "admin" or privacy != "confidential"
                assert (title in page) is expected, (role, privacy)
