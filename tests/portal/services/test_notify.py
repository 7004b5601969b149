"""Reporter notifications by e-mail, through a real SMTP server (aiosmtpd) on a free loopback port."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from bcc_common.net import free_port
from portal.config import Settings
from portal.errors import TransitionRefused
from portal.i18n import translate
from portal.main import create_app
from portal.reference import Lang
from portal.runtime import runtime_of
from portal.services import proposals, reports, users, workflow
from portal.services.events import NullSink
from portal.services.notify import Notifier, NotifyingSink, SmtpSettings
from tests.support.portal_app import (
    FakeClock,
    add_user,
    csrf,
    notifier_of,
    outbox,
    portal_with_smtp,
    report_id,
    staff_client,
    submit,
)
from tests.support.smtp import Inbox
from tests.support.wait import eventually_sync


def test_reporter_is_told_each_step_and_nothing_else(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        notifier = notifier_of(app)
        code = submit(client, contact_email="warga@example.id", description="Rahasia: nomor rumah 12")
        first = box.wait(1)[0]
        assert first["To"] == "warga@example.id" and code in first["Subject"]
        body = first.get_payload()
        assert isinstance(body, str) and f"{settings.public_url}/laporan/{code}" in body
        assert "Rahasia" not in body  # the report's own text never travels by e-mail
        admin = staff_client(app, "admin")
        rid = report_id(app, code)
        token = csrf(admin, "/staf")
        admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
        admin.post(
            f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": "needs_budget", "note": ""}
        )
        subjects = [m["Subject"] for m in box.wait(3)]
        assert subjects == [
            f"[{code}] Laporan diterima",
            f"[{code}] Laporan diverifikasi",
            f"[{code}] Laporan selesai",
        ]
        assert "usulan anggaran" in str(box.messages[2].get_payload())
        # A report without an e-mail address gets nothing.
        submit(client, contact_email="")
        admin.close()
    assert notifier.sent == 3 and notifier.failed == 0


def test_the_created_email_carries_the_reporter_key_which_the_outbox_then_forgets(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """The key reaches the reporter's e-mail (the only copy besides the submitter's browser); the
    outbox row held it in clear only until the e-mail was sent."""
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        code = submit(client, contact_email="warga@example.id")
        raw = box.wait(1)[0].get_payload(decode=True)  # long lines travel quoted-printable
        body = raw.decode() if isinstance(raw, bytes) else ""
        link = re.search(rf"{settings.public_url}/laporan/{code}/kunci/([A-Za-z0-9_-]{{32}})", body)
        assert link is not None
        assert f"{code}:{link.group(1)}" in (client.cookies.get("bcc_keys") or "")  # the same key
        eventually_sync(lambda: all(n.sent_at is not None for n in outbox(app)))
        assert [n.reporter_key for n in outbox(app)] == [None]
        other = TestClient(app)  # the link opens the reporter's actions in another browser
        r = other.get(link.group(0).removeprefix(settings.public_url), follow_redirects=False)
        assert r.status_code == 303 and "bcc_keys" in other.cookies
        other.close()


def test_smtp_down_is_retried_then_counted_never_breaks_the_report(
    settings: Settings, clock: FakeClock
) -> None:
    with portal_with_smtp(settings, clock, free_port(), attempts=2) as (app, client):  # nothing listens
        notifier = notifier_of(app)
        code = submit(client, contact_email="warga@example.id")
        assert client.get(f"/laporan/{code}").status_code == 200
        eventually_sync(lambda: notifier.failed == 1)  # the second attempt comes 1 s after the first
        [row] = outbox(app)
        assert row.attempts == 2 and row.failed_at is not None and row.sent_at is None
        assert "ConnectionRefusedError" in row.error
    assert notifier.sent == 0


def test_unsent_notifications_survive_a_restart_and_go_out_once(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """SMTP down while the report comes in, the portal restarts, SMTP is back: the e-mail is sent once,
    by the next start (it waited in the outbox table, not in the first process's memory)."""
    box, port = inbox
    with portal_with_smtp(settings, clock, free_port(), attempts=5) as (app, client):
        code = submit(client, contact_email="warga@example.id")
        eventually_sync(lambda: bool(outbox(app)) and outbox(app)[0].attempts >= 1)
        assert outbox(app)[0].sent_at is None  # (inside: after shutdown the app's engine is disposed)
    # two workers on the same database: one sends it, the other's claim fails
    with (
        portal_with_smtp(settings, clock, port) as (one, _c1),
        portal_with_smtp(settings, clock, port) as (two, _c2),
    ):
        eventually_sync(lambda: outbox(one)[0].sent_at is not None)
        assert notifier_of(one).sent + notifier_of(two).sent == 1
    [message] = box.wait(1)
    assert code in message["Subject"] and len(box.messages) == 1


def test_outbox_rows_commit_with_their_events(settings: Settings, clock: FakeClock) -> None:
    """The e-mail of an event is written in the event's own transaction: no sender thread running, yet
    every committed event has its row; an event that does not happen (a refused transition) has none."""
    app = create_app(settings, clock=clock.now)
    with TestClient(app):
        notifier = Notifier(
            SmtpSettings("127.0.0.1", free_port()), runtime_of(app).sessions, settings.public_url
        )
        sink = NotifyingSink(NullSink(), notifier)  # never started: rows only
        policy = reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)
        admin = add_user(app, "admin")
        with runtime_of(app).sessions() as db:
            inp = reports.ReportInput("kesehatan", "Judul", "Isi", "tangsi", contact_email="w@example.id")
            report = reports.create_report(db, runtime_of(app).reference, inp, [], policy, sink, clock.now())
            user = users.authenticate(db, admin.username, admin.password)
            assert user is not None
            workflow.verify(db, user, report.id, sink, clock.now())
            with pytest.raises(TransitionRefused):
                workflow.verify(db, user, report.id, sink, clock.now())  # already verified
        rows = outbox(app)
        assert [(r.code, r.event) for r in rows] == [(report.code, "created"), (report.code, "verified")]
        assert all(r.sent_at is None and r.attempts == 0 for r in rows)


def test_linked_reporters_are_told_each_proposal_stage_exactly_once(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """Two reports with an e-mail and one without carried by one proposal: each stage change is one
    e-mail to each reporter who gave an address, naming the stage, and a refused change none."""
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        notifier = notifier_of(app)
        codes = [
            submit(client, contact_email="siti@example.id"),
            submit(client, contact_email="budi@example.id"),
            submit(client, contact_email=""),
        ]
        admin = staff_client(app, "admin")
        token = csrf(admin, "/staf")
        pid = ""
        for code in codes:
            rid = report_id(app, code)
            admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
            r = admin.post(
                f"/staf/laporan/{rid}/tutup",
                data={"csrf_token": token, "resolution": "needs_budget", "proposal": pid},
                follow_redirects=False,
            )
            assert r.status_code == 303
            with runtime_of(app).sessions() as db:
                found = proposals.of_report(db, rid)
                assert found is not None
                pid = str(found.id)
        box.wait(6)  # created, verified, closed for the two with an address
        bappeda = staff_client(app, "agency", agency="bappeda")
        for stage in ("musrenbang_kelurahan", "rkpd", "musrenbang_kecamatan"):  # rkpd: a skip, refused
            bappeda.post(
                f"/staf/usulan/{pid}/tahap", data={"csrf_token": csrf(bappeda, "/staf"), "stage": stage}
            )
        messages = box.wait(10)[6:]
        eventually_sync(lambda: all(n.sent_at is not None for n in outbox(app)))
        # (inside: after shutdown the app's engine is disposed)
        rows = [n for n in outbox(app) if n.event == "proposal"]
        admin.close()
        bappeda.close()
    stages = sorted((m["To"], "kelurahan" in str(m.get_payload())) for m in messages)
    assert stages == [
        ("budi@example.id", False),
        ("budi@example.id", True),
        ("siti@example.id", False),
        ("siti@example.id", True),
    ]
    assert all("Usulan pembangunan" in m["Subject"] for m in messages)
    assert all(
        "Tahap: Musrenbang kec" in str(m.get_payload())
        for m in messages
        if "kelurahan" not in str(m.get_payload())
    )
    assert len(box.messages) == 10 and notifier.sent == 10
    assert len(rows) == 4 and {n.detail for n in rows} == {"musrenbang_kelurahan", "musrenbang_kecamatan"}


def test_reporter_is_written_to_in_the_language_of_the_form(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """A report made from the English form gets English e-mails, one from the Indonesian form Indonesian
    ones (the form's hidden ``lang``, stored as ``reports.lang``); staff pages' language plays no part."""
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        code_en = submit(client, contact_email="en@example.id", lang="en")
        code_id = submit(client, contact_email="id@example.id", lang="id")
        mails = {m["To"]: m for m in box.wait(2)}
        langs: tuple[tuple[str, Lang, Lang], ...] = ((code_en, "en", "id"), (code_id, "id", "en"))
        for code, lang, other in langs:
            mail = mails[f"{lang}@example.id"]
            body = str(mail.get_payload())
            assert mail["Subject"] == f"[{code}] {translate('email_subject_created', lang)}"
            assert translate("email_text_created", lang) in body
            assert translate("email_text_created", other) not in body
            assert translate("email_footer", other) not in body
        admin = staff_client(app, "admin")
        admin.post(
            f"/staf/laporan/{report_id(app, code_en)}/verifikasi?lang=id",
            data={"csrf_token": csrf(admin, "/staf")},
        )
        verified = box.wait(3)[2]
        assert verified["Subject"] == f"[{code_en}] {translate('email_subject_verified', 'en')}"
        assert translate("email_status", "en", status=translate("status_verified", "en")) in str(
            verified.get_payload()
        )
        admin.close()
