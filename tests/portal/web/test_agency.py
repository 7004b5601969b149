"""Agencies answer for deadlines (issue 19 item 5): one head (``kepala_dinas``) per agency, the officers'
e-mail on dispatch, their daily digest, the head's escalation when a deadline passes (fake clock), each
agency's own page with its permissions. E-mail goes through the real outbox to a real SMTP server."""

from __future__ import annotations

import html
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select, update

from bcc.cli import build_parser
from portal.config import Settings, SettingsError
from portal.errors import InvalidInput
from portal.models import JobRun, Notification, Report, User
from portal.runtime import runtime_of
from portal.services import agency, deadlines, evaluation, jobruns, users
from tests.support.portal_app import (
    FakeClock,
    Login,
    add_user,
    csrf,
    login,
    notifier_of,
    portal_with_sms,
    portal_with_smtp,
    report_id,
    staff_client,
    submit,
)
from tests.support.sms import FakeTwilio
from tests.support.smtp import Inbox, text_of
from tests.support.wait import eventually_sync

CATEGORY = "kesehatan"  # answered by dinkes (bcc_contract/data/categories.yaml)
AGENCY = "dinkes"


def person(app: FastAPI, role: str, agency_key: str | None, email: str = "", lang: str = "id") -> Login:
    """An account with its e-mail and language (``bcc admin set-contact``)."""
    who = add_user(app, role, agency_key)
    if email:
        with runtime_of(app).sessions() as db:
            users.set_contact(db, users.find_user(db, who.username), email, lang)
    return who


def dispatched(app: FastAPI, client: TestClient, **form: str) -> int:
    """A report of :data:`CATEGORY` submitted, verified and dispatched to its agency by an admin logged in
    now (a session lasts 8 hours; the tests move the clock by days): its id."""
    rid = report_id(app, submit(client, None, category=CATEGORY, contact_email="", **form))
    act(app, f"/staf/laporan/{rid}/verifikasi")
    act(app, f"/staf/laporan/{rid}/disposisi")
    return rid


def act(app: FastAPI, path: str, **data: str) -> None:
    """A staff action by an admin logged in now."""
    admin = staff_client(app, "admin")  # (not ``with``: that would run the app's lifespan a second time)
    try:
        r = admin.post(path, data={"csrf_token": csrf(admin, "/staf"), **data}, follow_redirects=False)
        assert r.status_code == 303, r.text
    finally:
        admin.close()


def agency_rows(app: FastAPI, event: str | None = None) -> list[Notification]:
    with runtime_of(app).sessions() as db:
        query = select(Notification).where(Notification.kind == "agency").order_by(Notification.id)
        if event:
            query = query.where(Notification.event == event)
        return list(db.scalars(query))


def jobs_of(app: FastAPI, clock: FakeClock) -> agency.AgencyJobs:
    """What one portal worker runs every ``agency_check_s``, at the fake clock."""
    runtime = runtime_of(app)
    return agency.AgencyJobs(runtime.sessions, runtime.reference, clock.now, runtime.settings.public_url)


def at_wib(day: datetime, hour: int, minute: int = 0) -> datetime:
    local = day.astimezone(deadlines.WIB).date()
    return datetime.combine(local, time(hour, minute), deadlines.WIB)


# ---- the head: one per agency ------------------------------------------------------------------------------
def bcc(argv: list[str]) -> int:
    args = build_parser(argv).parse_args(argv)
    result: int = __import__(args._module, fromlist=["run"]).run(args)
    return result


def test_one_active_head_per_agency_refused_clearly_everywhere(
    app: FastAPI, client: TestClient, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = settings.database_url
    create = ["admin", "create-user", "--role", "kepala_dinas", "--generate", "--database-url", url]
    assert bcc([*create, "--username", "kadis.dinkes", "--agency", AGENCY]) == 0
    assert "created kepala_dinas kadis.dinkes" in capsys.readouterr().out
    # a second head of the same agency: refused with the reason, nothing stored
    assert bcc([*create, "--username", "kadis.dua", "--agency", AGENCY]) == 2
    assert "dinkes already has a head (kepala_dinas): kadis.dinkes" in capsys.readouterr().err
    assert bcc([*create, "--username", "kadis.tanpa"]) == 2  # a head belongs to an agency
    assert "agency" in capsys.readouterr().err
    assert bcc([*create, "--username", "kadis.bpkad", "--agency", "bpkad"]) == 0  # another agency: fine
    with runtime_of(app).sessions() as db:
        heads = {u.username for u in db.scalars(select(User).where(User.role == "kepala_dinas"))}
        assert heads == {"kadis.dinkes", "kadis.bpkad"}
        # the database itself refuses a second active head (two admins at the same moment)
        db.add(User(username="kadis.x", display_name="x", password_hash="x", role="kepala_dinas",
                    agency=AGENCY, active=True, created_at=runtime_of(app).clock()))  # fmt: skip
        with pytest.raises(Exception, match=r"(?i)unique"):
            db.commit()
        db.rollback()
        # a new head once the old one is deactivated; the old one cannot come back beside it
        old = users.find_user(db, "kadis.dinkes")
        users.set_active(db, old, False)
        ref, now = runtime_of(app).reference, runtime_of(app).clock()
        new = users.create_user(db, ref, "kadis.baru", "kepala_dinas", "p" * 16, now, agency=AGENCY)
        with pytest.raises(InvalidInput, match=r"kadis\.baru"):
            users.set_active(db, old, True)
        db.rollback()
        old_id = old.id
        assert users.head_of(db, AGENCY) is not None and users.head_of(db, AGENCY).id == new.id  # type: ignore[union-attr]
    # the admin's accounts page says so in the admin's language, and stores nothing
    admin = staff_client(app, "admin")
    r = admin.post(f"/staf/akun/{old_id}/aktif?lang=en", data={"csrf_token": csrf(admin, "/staf")})
    assert r.status_code == 409 and "This agency already has an active head" in html.unescape(r.text)
    with runtime_of(app).sessions() as db:
        assert not users.find_user(db, "kadis.dinkes").active
    admin.close()


def test_reactivating_a_head_while_another_admin_activates_one_shows_the_error_not_a_500(
    app: FastAPI, client: TestClient
) -> None:
    """The check before the commit sees no active head, but another admin activates one at that moment:
    the database's unique index refuses the second, and the page says so as create_user does (it was a
    500: review item 11). The other admin's commit happens on its own connection just before this
    request's UPDATE reaches the database."""
    with runtime_of(app).sessions() as db:
        ref, now = runtime_of(app).reference, runtime_of(app).clock()
        old = users.create_user(db, ref, "kadis.lama", "kepala_dinas", "p" * 16, now, agency=AGENCY)
        users.set_active(db, old, False)
        other = users.create_user(db, ref, "kadis.lain", "kepala_dinas", "p" * 16, now, agency=AGENCY)
        users.set_active(db, other, False)
        old_id, other_id = old.id, other.id
    engine = runtime_of(app).engine
    elsewhere = create_engine(engine.url)
    raced: list[bool] = []

    def other_admin(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if raced or not statement.lstrip().upper().startswith("UPDATE USERS"):
            return
        raced.append(True)
        with elsewhere.begin() as c:
            c.execute(update(User).where(User.id == other_id).values(active=True))

    admin = staff_client(app, "admin")
    event.listen(engine, "before_cursor_execute", other_admin)
    try:
        r = admin.post(f"/staf/akun/{old_id}/aktif?lang=en", data={"csrf_token": csrf(admin, "/staf")})
    finally:
        event.remove(engine, "before_cursor_execute", other_admin)
        elsewhere.dispose()
        admin.close()
    assert raced and r.status_code == 409
    assert "This agency already has an active head" in html.unescape(r.text)
    with runtime_of(app).sessions() as db:
        assert users.head_of(db, AGENCY).id == other_id  # type: ignore[union-attr]
        assert not users.find_user(db, "kadis.lama").active


# ---- dispatch ----------------------------------------------------------------------------------------------
def test_officers_get_one_email_per_dispatch_in_their_language(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        person(app, "agency", AGENCY, "satu@dinkes.example.id", "id")
        person(app, "agency", AGENCY, "two@dinkes.example.id", "en")
        person(app, "agency", AGENCY)  # no e-mail address: nothing
        person(app, "agency", "bpkad", "bpkad@example.id")  # another agency: nothing
        person(app, "kepala_dinas", AGENCY, "kadis@dinkes.example.id")  # the head is told on escalation only
        rid = dispatched(app, client, description="Rahasia: nomor rumah 12")
        messages = box.wait(2)
        by_to = {m["To"]: m for m in messages}
        assert set(by_to) == {"satu@dinkes.example.id", "two@dinkes.example.id"}
        with runtime_of(app).sessions() as db:
            report = db.get(Report, rid)
            assert report is not None and report.respond_due is not None
            code, due = report.code, report.respond_due
        link = f"{settings.public_url}/staf/laporan/{rid}"
        name = runtime_of(app).reference.agencies[AGENCY].name
        indonesian, english = (
            text_of(by_to["satu@dinkes.example.id"]),
            text_of(by_to["two@dinkes.example.id"]),
        )
        assert by_to["satu@dinkes.example.id"]["Subject"] == f"[{code}] Laporan baru untuk {name}"
        assert f"Batas waktu tanggapan: {due.astimezone(deadlines.WIB):%d-%m-%Y %H:%M} WIB" in indonesian
        assert by_to["two@dinkes.example.id"]["Subject"] == f"[{code}] New report for {name}"
        assert "Response due:" in english and link in english and link in indonesian
        assert "Rahasia" not in indonesian + english  # the citizen's text never travels by e-mail
        # dispatched again (to another agency): that agency's officer, once
        act(app, f"/staf/laporan/{rid}/disposisi", agency="bpkad")
        assert box.wait(3)[2]["To"] == "bpkad@example.id"
        eventually_sync(lambda: all(r.sent_at is not None for r in agency_rows(app)))
        assert len(agency_rows(app, "dispatched")) == 3 and len(box.messages) == 3


def test_a_reopened_report_goes_back_to_the_agency_with_an_email_to_its_officers(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """The reporter reopens a resolved report: it is dispatched to the agency again with a new response
    deadline, and its officers are told once, as on a dispatch (review item 4)."""
    box, port = inbox
    with portal_with_smtp(settings, clock, port) as (app, client):
        person(app, "agency", AGENCY, "satu@dinkes.example.id")
        rid = dispatched(app, client)
        assert box.wait(1)[0]["To"] == "satu@dinkes.example.id"
        act(app, f"/staf/laporan/{rid}/tutup", resolution="resolved_direct")
        clock.advance(days=2)
        code = agency_rows(app)[0].code
        r = client.post(
            f"/laporan/{code}/buka",
            data={"csrf_token": csrf(client), "reason": "Masih tutup."},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        with runtime_of(app).sessions() as db:
            report = db.get(Report, rid)
            assert report is not None and report.status == "dispatched" and report.respond_due is not None
            due = report.respond_due
        again = box.wait(2)[1]
        assert again["To"] == "satu@dinkes.example.id" and code in again["Subject"]
        assert f"{due.astimezone(deadlines.WIB):%d-%m-%Y %H:%M} WIB" in text_of(again)  # the new deadline
        # a second reopen is refused (not closed) and the periodic check writes no dispatch mail: once
        r = client.post(f"/laporan/{code}/buka", data={"csrf_token": csrf(client), "reason": "Lagi."})
        assert r.status_code == 409
        jobs_of(app, clock).check()
        eventually_sync(lambda: all(r.sent_at is not None for r in agency_rows(app)))
        assert len(agency_rows(app, "dispatched")) == 2 and len(box.messages) == 2


def test_a_portal_with_sms_but_no_smtp_writes_no_agency_email(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    """It could never go out: no outbox row, no failure counted (review item 2)."""
    with portal_with_sms(settings, clock, twilio) as (app, client):
        person(app, "agency", AGENCY, "satu@dinkes.example.id")
        rid = dispatched(app, client)
        with runtime_of(app).sessions() as db:
            assert db.get(Report, rid).status == "dispatched"  # type: ignore[union-attr]
        assert agency_rows(app) == []
        notifier = notifier_of(app)
        assert notifier.smtp is None and notifier.failed == 0


# ---- escalation --------------------------------------------------------------------------------------------
def test_the_head_is_escalated_to_once_per_report_and_deadline(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    person(app, "kepala_dinas", AGENCY, "kadis@dinkes.example.id", "en")
    person(app, "kepala_dinas", "bpkad", "kadis@bpkad.example.id")
    rid = report_id(app, submit(client, category=CATEGORY))
    other = report_id(app, submit(client, category="kesehatan", contact_email=""))
    with runtime_of(app).sessions() as db:
        report = db.get(Report, rid)
        assert report is not None
        verify_due = report.verify_due
    assert verify_due == deadlines.verify_due(clock.now())
    one, two = jobs_of(app, clock), jobs_of(app, clock)  # two workers
    clock.current = verify_due - timedelta(seconds=1)  # not passed yet
    assert one.check() == 0 and agency_rows(app) == []
    clock.current = verify_due + timedelta(seconds=1)
    assert one.check() == 2  # both dinkes reports, to dinkes's head only
    assert two.check() == 0 and one.check() == 0  # once, whichever worker looks, however often
    rows = agency_rows(app, "escalation")
    assert {r.recipient for r in rows} == {"kadis@dinkes.example.id"} and len(rows) == 2
    with runtime_of(app).sessions() as db:
        codes = {r.code for r in db.scalars(select(Report).where(Report.id.in_([rid, other])))}
    assert {r.code for r in rows} == codes
    first = next(r for r in rows if r.code in codes)
    assert first.subject is not None and "ESCALATION: verification deadline passed" in first.subject
    assert first.body is not None and "/staf/dinas/dinkes" in first.body
    # verified and dispatched late: the response deadline is a new deadline, escalated once when it passes
    act(app, f"/staf/laporan/{rid}/verifikasi")
    act(app, f"/staf/laporan/{rid}/disposisi")
    with runtime_of(app).sessions() as db:
        respond_due = db.get(Report, rid).respond_due  # type: ignore[union-attr]
    assert respond_due == deadlines.respond_due(clock.now())
    clock.current = respond_due - timedelta(minutes=1)
    assert one.check() == 0
    clock.current = respond_due + timedelta(minutes=1)
    assert one.check() == 1 and two.check() == 0
    [late] = [r for r in agency_rows(app, "escalation") if r.subject and "response deadline" in r.subject]
    assert late.recipient == "kadis@dinkes.example.id"
    # a deadline older than the look-back is not escalated any more
    clock.current = respond_due + agency.LOOKBACK + timedelta(days=30)
    assert one.check() == 0


def test_verified_in_time_is_not_escalated_and_a_bad_digest_time_is_refused(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    person(app, "kepala_dinas", AGENCY, "kadis@dinkes.example.id")
    rid = report_id(app, submit(client, None, category=CATEGORY))
    act(app, f"/staf/laporan/{rid}/verifikasi")  # verified in time, waiting for its dispatch
    clock.advance(days=20)
    assert jobs_of(app, clock).check() == 0 and agency_rows(app) == []
    with pytest.raises(SettingsError, match="BCC_PORTAL_AGENCY_DIGEST_AT"):
        Settings.from_env({"BCC_PORTAL_SECRET_KEY": "k" * 32, "BCC_PORTAL_AGENCY_DIGEST_AT": "7 pagi"})


def test_escalation_email_reaches_the_head_once_with_two_workers(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    """The whole path: both workers' periodic checks (every 50 ms here) at the fake clock, the outbox,
    the SMTP server: one e-mail."""
    box, port = inbox
    fast = settings.model_copy(update={"agency_check_s": 0.05})
    with (
        portal_with_smtp(fast, clock, port) as (one, client),
        portal_with_smtp(fast, clock, port) as (two, _c),
    ):
        person(one, "kepala_dinas", AGENCY, "kadis@dinkes.example.id")
        code = submit(client, category=CATEGORY, contact_email="")
        with runtime_of(one).sessions() as db:
            due = db.scalar(select(Report.verify_due).where(Report.code == code))
        assert due is not None
        clock.current = due + timedelta(hours=1)
        [message] = box.wait(1)
        assert message["To"] == "kadis@dinkes.example.id" and code in message["Subject"]
        assert "ESKALASI" in message["Subject"] and "verifikasi" in text_of(message)
        eventually_sync(lambda: all(r.sent_at is not None for r in agency_rows(two)))
        assert len(agency_rows(two)) == 1 and len(box.messages) == 1


# ---- the daily digest --------------------------------------------------------------------------------------
def test_daily_digest_lists_overdue_and_due_reports_once_a_day(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    person(app, "agency", AGENCY, "satu@dinkes.example.id")
    person(app, "agency", AGENCY, "two@dinkes.example.id", "en")
    person(app, "agency", "bpkad", "bpkad@example.id")  # nothing due at bpkad: no digest
    ids = []
    for _day in range(4):  # dispatched on four consecutive days: four consecutive response deadlines
        ids.append(dispatched(app, client))
        clock.advance(days=1)
    with runtime_of(app).sessions() as db:
        due = {r.id: r.respond_due for r in db.scalars(select(Report).where(Report.id.in_(ids)))}
    # the morning the second report falls due: the first is overdue, the third due tomorrow
    digest_day = due[ids[1]]
    assert digest_day is not None
    jobs = jobs_of(app, clock)
    other = jobs_of(app, clock)
    clock.current = at_wib(digest_day, 6, 59)
    assert jobs.check() == 0 and agency_rows(app, "digest") == []  # before 07:00 WIB
    clock.current = at_wib(digest_day, 7, 0)
    assert jobs.check() == 2  # one per dinkes officer with an address
    assert other.check() == 0 and jobs.check() == 0  # once a day across workers
    now = clock.now()
    end_today = datetime.combine(now.astimezone(deadlines.WIB).date(), time.max, deadlines.WIB)
    with runtime_of(app).sessions() as db:
        code_of = {r.id: r.code for r in db.scalars(select(Report).where(Report.id.in_(ids)))}
        assert db.scalar(select(JobRun.result).where(JobRun.job == agency.DIGEST_JOB)) == "ok"
    overdue = [code_of[i] for i in ids if due[i] < now]  # type: ignore[operator]
    today = [code_of[i] for i in ids if now <= due[i] <= end_today]  # type: ignore[operator]
    tomorrow = [code_of[i] for i in ids if end_today < due[i] <= end_today + timedelta(days=1)]  # type: ignore[operator]
    later = [code_of[i] for i in ids if due[i] > end_today + timedelta(days=1)]  # type: ignore[operator]
    assert overdue and today and tomorrow and later  # the fixture covers every section
    rows = {r.recipient: r for r in agency_rows(app, "digest")}
    assert set(rows) == {"satu@dinkes.example.id", "two@dinkes.example.id"}
    english = rows["two@dinkes.example.id"].body or ""
    sections = english.split("\n\n")
    for title, codes in (("Overdue", overdue), ("Due today", today), ("Due tomorrow", tomorrow)):
        [section] = [s for s in sections if s.startswith(f"{title} (")]
        assert section.startswith(f"{title} ({len(codes)}):")
        assert all(code in section for code in codes)
    assert not any(code in english for code in later)
    assert "Lewat tenggat" in (rows["satu@dinkes.example.id"].body or "")
    # the next day: a new digest
    clock.advance(days=1)
    assert jobs.check() == 2 and len(agency_rows(app, "digest")) == 4


def test_a_digest_claim_left_running_by_a_dead_worker_is_taken_over_once_stale(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    """A worker killed between its claim and its result left the day "running": no later check could
    claim it, so the day had no digest (review item 10). Taken over once the claim is older than
    ``jobruns.STALE``, by one worker, once."""
    person(app, "agency", AGENCY, "satu@dinkes.example.id")
    rid = dispatched(app, client)
    with runtime_of(app).sessions() as db:
        due = db.get(Report, rid).respond_due  # type: ignore[union-attr]
    assert due is not None
    clock.current = at_wib(due, 7, 0)
    slot = clock.now().astimezone(deadlines.WIB).date().isoformat()
    with runtime_of(app).sessions() as db:  # the dead worker's claim, a minute old
        db.add(JobRun(job=agency.DIGEST_JOB, slot=slot, worker="worker-dead", result="running", detail="",
                      started_at=clock.now() - timedelta(minutes=1)))  # fmt: skip
        db.commit()
    one, two = jobs_of(app, clock), jobs_of(app, clock)
    assert one.check() == 0 and agency_rows(app, "digest") == []  # still fresh: its worker may be busy
    clock.current = clock.now() - timedelta(minutes=1) + jobruns.STALE + timedelta(seconds=1)
    assert one.check() == 1  # stale: taken over
    assert two.check() == 0 and one.check() == 0  # and once
    [row] = agency_rows(app, "digest")
    assert row.recipient == "satu@dinkes.example.id"
    with runtime_of(app).sessions() as db:
        run = db.scalar(select(JobRun).where(JobRun.job == agency.DIGEST_JOB, JobRun.slot == slot))
        assert run is not None and (run.result, run.worker) == ("ok", one.worker)


# ---- the agency's page -------------------------------------------------------------------------------------
def test_agency_page_shows_its_reports_rates_and_proposals_to_whom_it_may(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    # November: one report answered in time
    first = dispatched(app, client, title="Puskesmas tutup")
    act(app, f"/staf/laporan/{first}/tanggapan", body="Sudah buka")
    # December: one answered late, one still open and overdue, one needing a budget (a proposal)
    clock.current = at_wib(clock.now() + timedelta(days=31), 9)
    late = dispatched(app, client, title="Antrean panjang")
    still = dispatched(app, client, title="Ambulans rusak")
    clock.advance(days=14)
    act(app, f"/staf/laporan/{late}/tanggapan", body="Maaf terlambat")
    budget = dispatched(app, client, title="Gedung puskesmas retak")
    act(
        app,
        f"/staf/laporan/{budget}/tutup",
        resolution="needs_budget",
        proposal_title="Renovasi puskesmas",
    )
    admin = staff_client(app, "admin")
    officer, head = staff_client(app, "agency", AGENCY), staff_client(app, "kepala_dinas", AGENCY)
    for who in (admin, officer, head):
        r = who.get("/staf/dinas/dinkes")
        assert r.status_code == 200
        view = r.context["view"]
        # open: all but the closed one (answered reports wait for the admin's closure); overdue: the
        # one still unanswered past its response deadline
        assert sorted(rep.id for rep in view.reports) == sorted([first, late, still])
        assert view.open_count == 3 and view.overdue_count == 1
        this, last = view.rates[view.this_month], view.rates[view.last_month]
        # one answered, late (the needs-budget closure is no answer; the unanswered one is not counted)
        assert (this.responded, this.responded_on_time) == (1, 0)
        assert (last.responded, last.responded_on_time) == (1, 1)
        assert [p.title for p in view.proposals] == ["Renovasi puskesmas"]
        text = html.unescape(r.text)
        assert "Ambulans rusak" in text and "Renovasi puskesmas" in text
    # the page counts one agency in SQL: the same figures as the monthly evaluation's rows
    with runtime_of(app).sessions() as db:
        ref = runtime_of(app).reference
        for month in (view.this_month, view.last_month):
            whole = evaluation.agency_rates(evaluation.evaluate(db, ref, month))
            assert [evaluation.agency_rate(db, ref, AGENCY, month)] == [
                r for r in whole if r.agency == AGENCY
            ]
    assert officer.get("/staf/dinas", follow_redirects=False).headers["location"] == "/staf/dinas/dinkes"
    # the council: totals only
    viewer = staff_client(app, "viewer")
    r = viewer.get("/staf/dinas/dinkes?lang=en")
    text = html.unescape(r.text)
    assert r.status_code == 200 and r.context["view"].reports == [] and r.context["view"].proposals == []
    assert "Ambulans rusak" not in text and "Renovasi puskesmas" not in text
    assert "Your role sees the totals only" in text and r.context["view"].proposal_total.count == 1
    # everyone else: no
    for who in (
        staff_client(app, "agency", "bpkad"),
        staff_client(app, "kepala_dinas", "bpkad"),
        staff_client(app, "operator"),
    ):
        assert who.get("/staf/dinas/dinkes").status_code == 403
        who.close()
    assert admin.get("/staf/dinas/tidak_ada").status_code == 404
    for c in (admin, officer, head, viewer):
        c.close()


def test_head_sees_the_agency_queue_but_acts_on_nothing(app: FastAPI, client: TestClient) -> None:
    rid = dispatched(app, client)
    head = TestClient(app)
    login(head, add_user(app, "kepala_dinas", AGENCY))
    assert rid in [r.id for r in head.get("/staf").context["result"].reports]
    page = head.get(f"/staf/laporan/{rid}")
    assert page.status_code == 200 and "Siti Aminah" not in page.text  # no reporter contact
    r = head.post(f"/staf/laporan/{rid}/tanggapan", data={"csrf_token": csrf(head, "/staf"), "body": "x"})
    assert r.status_code == 403
    assert head.get("/staf/evaluasi").status_code == 403
    head.close()
