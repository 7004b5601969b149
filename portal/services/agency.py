"""Agencies answer for deadlines (SP4N-LAPOR!): their officers are told of each report dispatched to them
and get a daily digest of what is due and overdue, their head (role ``kepala_dinas``) is escalated to
when a deadline passes, and each agency has its own page (portal/web/agency.py).

Every e-mail is an outbox row of kind ``agency`` (portal/services/notify.py), written whole in the
recipient's language (the account's ``lang``) to the account's ``email`` (``bcc admin set-contact``),
with a unique ``dedupe_key``, and inserted with "on conflict do nothing": whichever worker writes it,
however often, it exists once, and the outbox's senders claim and send each row once, retried.

- dispatch: in the dispatch's own transaction (``workflow.dispatch``), one row per active officer of
  the agency (role ``agency``) with an e-mail; the key names the report and the dispatch time.
- daily digest: every worker checks every ``agency_check_s``; from ``agency_digest_at`` (WIB) the day's
  run is claimed through ``job_runs`` (job ``agency_digest``, slot the WIB date: one worker wins, as for
  the contact erasure), and each officer whose agency has reports overdue or due today or tomorrow
  gets one e-mail (key: day and username). Nothing due: no e-mail.
- escalation: at every check, each report whose verification deadline (still ``submitted``) or
  response deadline (``dispatched``, not answered) has passed, within the last :data:`LOOKBACK`, is
  e-mailed to the active head of the responsible agency (the report's agency, before dispatch its
  category's), once per report and deadline (key: report, deadline kind, due time: a reopened
  report's new response deadline escalates again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bcc_common.timefmt import utc_now
from portal.i18n import translate
from portal.models import OPEN_STATUSES, JobRun, Notification, Proposal, Report, User
from portal.reference import Lang, Reference, lang_or_default
from portal.services import evaluation, jobruns, proposals, users
from portal.services.deadlines import WIB
from portal.services.evaluation import AgencyRate

log = logging.getLogger(__name__)

AGENCY_KIND = "agency"  # outbox rows written whole, like the alarm e-mails
DIGEST_JOB = "agency_digest"
# Deadlines that passed longer ago than this are not escalated any more (a portal down for a week, or
# the backlog of a database that predates escalation, does not flood the heads' inboxes).
LOOKBACK = timedelta(days=7)
PAGE_REPORTS = 200  # the agency page lists at most this many open reports (the queue has them all)


# ---- who ---------------------------------------------------------------------------------------------------
def responsible(ref: Reference, report: Report) -> str:
    """The agency answering for the report: its own once dispatched, before that its category's."""
    if report.agency:
        return report.agency
    found = ref.categories.get(report.category)
    return found.agency if found else ""


def _reachable(role: str) -> ColumnElement[bool]:
    return (User.role == role) & User.active.is_(True) & User.email.is_not(None) & (User.email != "")


def officers(db: Session, agency: str) -> list[User]:
    """The agency's active officers with an e-mail address."""
    return list(db.scalars(select(User).where(_reachable("agency"), User.agency == agency).order_by(User.id)))


def heads(db: Session) -> dict[str, User]:
    """agency -> its active head with an e-mail address."""
    return {u.agency: u for u in db.scalars(select(User).where(_reachable("kepala_dinas"))) if u.agency}


# ---- the outbox --------------------------------------------------------------------------------------------
def dedupe_key(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


@dataclass(frozen=True)
class Mail:
    key: str
    event: str  # dispatched | digest | escalation
    code: str  # the report's tracking code ("" for a digest)
    recipient: str
    subject: str
    body: str


def enqueue(db: Session, mails: Iterable[Mail], now: datetime) -> int:
    """Add the mails to the outbox in ``db``'s transaction (not committed here); one whose key exists
    already is not added again. ``now`` is the event's time; the senders' is real time (as for the
    alarm e-mails). The number of mails given."""
    send_at = utc_now()
    rows = [
        {
            "code": m.code,
            "event": m.event,
            "created_at": now,
            "next_at": send_at,
            "attempts": 0,
            "error": "",
            "kind": AGENCY_KIND,
            "recipient": m.recipient,
            "subject": m.subject[:200],
            "body": m.body,
            "dedupe_key": m.key,
        }
        for m in mails
    ]
    if not rows:
        return 0
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = pg_insert(Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
    elif dialect == "sqlite":
        statement = sqlite_insert(Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
    else:  # pragma: no cover - the portal runs on SQLite and PostgreSQL only
        statement = insert(Notification)
    db.execute(statement, rows)
    return len(rows)


def _wib(ts: datetime) -> str:
    return ts.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")


def _facts(ref: Reference, report: Report, lang: Lang) -> dict[str, str]:
    category = ref.categories.get(report.category)
    agency = ref.agencies.get(responsible(ref, report))
    return {
        "code": report.code,
        "category": category.name.get(lang) if category else report.category,
        "kelurahan": ref.kelurahan_name(report.kelurahan),
        "agency": agency.name if agency else responsible(ref, report),
    }


def _lang(user: User) -> Lang:
    return lang_or_default(user.lang)


def _body(lang: Lang, *lines: str) -> str:
    return "\n".join([*lines, "", translate("mail_footer", lang)])


# ---- dispatch ----------------------------------------------------------------------------------------------
def dispatch_mails(db: Session, ref: Reference, report: Report, public_url: str) -> list[Mail]:
    """One e-mail per officer of the agency the report was just dispatched to (never the report's text)."""
    assert report.agency is not None and report.dispatched_at is not None and report.respond_due is not None
    out = []
    for officer in officers(db, report.agency):
        lang = _lang(officer)
        facts = _facts(ref, report, lang) | {"due": _wib(report.respond_due)}
        url = f"{public_url.rstrip('/')}/staf/laporan/{report.id}"
        body = _body(
            lang,
            translate("mail_dispatch_body", lang).format(**facts),
            translate("mail_open", lang).format(url=url),
        )
        key = dedupe_key("dispatched", report.id, report.dispatched_at.isoformat(), officer.username)
        subject = translate("mail_dispatch_subject", lang).format(**facts)
        out.append(Mail(key, "dispatched", report.code, officer.email or "", subject, body))
    return out


def stage_dispatch(db: Session, ref: Reference, sink: object, report: Report) -> None:
    """Before the dispatch commits: the officers' e-mails, when the portal sends e-mail (its event sink
    carries the outbox's notifier, and the notifier an SMTP server: a portal with SMS only writes no
    e-mail it could never send, as it runs no digest or escalation)."""
    notifier = getattr(sink, "notifier", None)
    if notifier is None or notifier.smtp is None:
        return
    assert report.dispatched_at is not None
    enqueue(db, dispatch_mails(db, ref, report, notifier.public_url), report.dispatched_at)


# ---- the daily digest --------------------------------------------------------------------------------------
@dataclass
class Due:
    """An agency's dispatched reports by deadline: overdue, due today, due tomorrow (WIB)."""

    overdue: list[Report] = field(default_factory=list)
    today: list[Report] = field(default_factory=list)
    tomorrow: list[Report] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.overdue) + len(self.today) + len(self.tomorrow)


def _day_end(now: datetime, days: int) -> datetime:
    day = now.astimezone(WIB).date() + timedelta(days=days)
    return datetime.combine(day, time.max, WIB)


def due_by_agency(db: Session, now: datetime, agencies: Iterable[str]) -> dict[str, Due]:
    """The dispatched reports of ``agencies`` whose response deadline passed or ends by tomorrow night."""
    wanted = list(agencies)
    out = {a: Due() for a in wanted}
    if not wanted:
        return out
    end_today, end_tomorrow = _day_end(now, 0), _day_end(now, 1)
    rows = db.scalars(
        select(Report)
        .where(Report.status == "dispatched", Report.agency.in_(wanted), Report.respond_due <= end_tomorrow)
        .order_by(Report.respond_due)
    )
    for report in rows:
        due = out[report.agency or ""]
        assert report.respond_due is not None
        if report.respond_due < now:
            due.overdue.append(report)
        elif report.respond_due <= end_today:
            due.today.append(report)
        else:
            due.tomorrow.append(report)
    return out


def digest_mails(db: Session, ref: Reference, now: datetime, public_url: str) -> list[Mail]:
    """Today's digest for every officer whose agency has something overdue or due today or tomorrow."""
    base = public_url.rstrip("/")
    day = now.astimezone(WIB).date().isoformat()
    staff = list(db.scalars(select(User).where(_reachable("agency")).order_by(User.id)))
    due = due_by_agency(db, now, {u.agency for u in staff if u.agency})
    out = []
    for officer in staff:
        found = due.get(officer.agency or "")
        if found is None or not found.count:
            continue
        lang = _lang(officer)
        agency = ref.agencies[officer.agency].name if officer.agency in ref.agencies else officer.agency or ""
        lines = [translate("mail_digest_intro", lang).format(agency=agency, day=day)]
        for name, reports in (
            ("digest_overdue", found.overdue),
            ("digest_today", found.today),
            ("digest_tomorrow", found.tomorrow),
        ):
            if not reports:
                continue
            lines += ["", f"{translate(name, lang)} ({len(reports)}):"]
            for r in reports:
                assert r.respond_due is not None
                category = _facts(ref, r, lang)["category"]
                lines.append(f"- {r.code} · {category} · {_wib(r.respond_due)} · {base}/staf/laporan/{r.id}")
        lines += ["", translate("mail_digest_page", lang).format(url=f"{base}/staf/dinas/{officer.agency}")]
        subject = translate("mail_digest_subject", lang).format(agency=agency, day=day)
        key = dedupe_key(DIGEST_JOB, day, officer.username)
        out.append(Mail(key, "digest", "", officer.email or "", subject, _body(lang, *lines)))
    return out


def digest_due(now: datetime, digest_at: str) -> bool:
    """The day's digest may go from ``digest_at`` (``HH:MM``, WIB) on."""
    return now.astimezone(WIB).strftime("%H:%M") >= digest_at


def run_digest(
    sessions: sessionmaker[Session], ref: Reference, now: datetime, public_url: str, worker: str
) -> int | None:
    """Claim today's digest (one worker per WIB day) and write it; the number of e-mails, or None when
    another worker has the day. A failed run gives its claim back, so a later check tries again, and a
    claim left running by a worker that died is taken over after ``jobruns.STALE`` (the e-mails' keys
    make a repeated write harmless)."""
    slot = now.astimezone(WIB).date().isoformat()
    with sessions() as db:
        run = jobruns.claim(db, DIGEST_JOB, slot, now, worker)
        if run is None:
            return None
        try:
            written = enqueue(db, digest_mails(db, ref, now, public_url), now)
            run.result, run.detail, run.finished_at = "ok", f"{written} e-mails", now
            db.commit()
        except Exception:
            db.rollback()
            db.execute(delete(JobRun).where(JobRun.job == DIGEST_JOB, JobRun.slot == slot))
            db.commit()
            raise
    log.info("agency digest %s: %d e-mails (worker %s)", slot, written, worker)
    return written


# ---- escalation --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Missed:
    """A deadline passed within :data:`LOOKBACK`: the report, which deadline, when, and the head to tell."""

    report: Report
    kind: str  # verify | respond
    due: datetime
    head: User

    @property
    def key(self) -> str:
        return dedupe_key("escalation", self.report.id, self.kind, self.due.isoformat())


def missed_deadlines(db: Session, ref: Reference, now: datetime) -> list[Missed]:
    """The deadlines passed within :data:`LOOKBACK` whose agency has a head to tell (the ones escalated
    already included: :func:`escalate` leaves those out by their key)."""
    by_agency = heads(db)
    if not by_agency:
        return []
    categories = [k for k, c in ref.categories.items() if c.agency in by_agency]
    since = now - LOOKBACK
    verify = (
        (Report.status == "submitted")  # not verified in time (as the backlog gauge counts it)
        & (Report.verify_due < now)
        & (Report.verify_due >= since)
        & or_(Report.agency.in_(list(by_agency)), Report.agency.is_(None) & Report.category.in_(categories))
    )
    respond = (
        (Report.status == "dispatched")
        & (Report.respond_due < now)
        & (Report.respond_due >= since)
        & Report.agency.in_(list(by_agency))
    )
    out = []
    for report in db.scalars(select(Report).where(verify | respond).order_by(Report.id)):
        head = by_agency.get(responsible(ref, report))
        if head is None:
            continue
        kind = "verify" if report.status == "submitted" else "respond"
        due = report.verify_due if kind == "verify" else report.respond_due
        assert due is not None
        out.append(Missed(report, kind, due, head))
    return out


def escalation_mail(ref: Reference, missed: Missed, public_url: str) -> Mail:
    """The head's e-mail for one missed deadline, in the head's language."""
    head, lang = missed.head, _lang(missed.head)
    facts = _facts(ref, missed.report, lang) | {
        "due": _wib(missed.due),
        "deadline": translate(f"deadline_{missed.kind}", lang),
    }
    body = _body(
        lang,
        translate("mail_escalation_body", lang).format(**facts),
        translate("mail_open", lang).format(url=f"{public_url.rstrip('/')}/staf/dinas/{head.agency}"),
    )
    subject = translate("mail_escalation_subject", lang).format(**facts)
    return Mail(missed.key, "escalation", missed.report.code, head.email or "", subject, body)


def escalate(db: Session, ref: Reference, now: datetime, public_url: str) -> int:
    """Write (and commit) the escalations not in the outbox yet; how many were new. The keys come first:
    only the mails not written yet are composed (a check runs every minute in every worker)."""
    missed = missed_deadlines(db, ref, now)
    if not missed:
        return 0
    known = set(
        db.scalars(
            select(Notification.dedupe_key).where(Notification.dedupe_key.in_([m.key for m in missed]))
        )
    )
    new = [escalation_mail(ref, m, public_url) for m in missed if m.key not in known]
    if new:
        enqueue(db, new, now)
        db.commit()
    return len(new)


# ---- the periodic check ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgencyJobs:
    """What the check needs: sessions, reference data, the clock, the link base and the digest time."""

    sessions: sessionmaker[Session]
    ref: Reference
    clock: Callable[[], datetime]
    public_url: str
    digest_at: str = "07:00"
    worker: str = field(default_factory=lambda: f"worker-{secrets.token_hex(4)}")

    def check(self) -> int:
        """One check: escalations, then the day's digest when due; the number of e-mails written."""
        now = self.clock()
        with self.sessions() as db:
            written = escalate(db, self.ref, now, self.public_url)
        if digest_due(now, self.digest_at):
            written += run_digest(self.sessions, self.ref, now, self.public_url, self.worker) or 0
        return written


async def run_periodically(
    jobs: AgencyJobs, check_s: float, wake: Callable[[], None], stop: asyncio.Event
) -> None:
    """Every ``check_s`` seconds, :meth:`AgencyJobs.check` (in a thread), waking the outbox's sender
    when it wrote e-mails, until ``stop`` is set (a check in progress finishes: it holds a connection)."""
    while not stop.is_set():
        try:
            if await asyncio.to_thread(jobs.check):
                wake()
        except Exception:  # a database hiccup must not end the task; the next check tries again
            log.exception("agency deadline check failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), check_s)


# ---- the agency's page -------------------------------------------------------------------------------------
@dataclass
class AgencyView:
    """What an agency's page shows: open reports with their deadlines (none for aggregate-only roles),
    counts, on-time rates this month and last month, and its proposals (with their aggregate)."""

    agency: str
    head: User | None
    open_count: int
    overdue_count: int
    due_soon_count: int
    reports: list[Report]
    this_month: str
    last_month: str
    rates: dict[str, AgencyRate]
    proposal_total: proposals.Aggregate
    proposals: list[Proposal]


def view(db: Session, ref: Reference, agency: str, now: datetime, details: bool) -> AgencyView:
    """The page of ``agency``; ``details`` False leaves out the reports and proposals one by one."""
    mine = (Report.agency == agency) & Report.dispatched_at.is_not(None) & Report.status.in_(OPEN_STATUSES)
    deadline = Report.respond_due
    dispatched = mine & (Report.status == "dispatched")
    open_count = int(db.scalar(select(func.count()).where(mine)) or 0)
    overdue = int(db.scalar(select(func.count()).where(dispatched, deadline < now)) or 0)
    soon = int(
        db.scalar(select(func.count()).where(dispatched, deadline >= now, deadline <= _day_end(now, 1))) or 0
    )
    reports: list[Report] = []
    if details:
        reports = list(
            db.scalars(
                select(Report)
                .where(mine)
                .order_by(Report.respond_due.is_(None), Report.respond_due, Report.id)
                .limit(PAGE_REPORTS)
            )
        )
    this_month = now.astimezone(WIB).strftime("%Y-%m")
    last_month = evaluation.months_back(this_month, 2)[0]
    total = proposals.Aggregate(agency)
    for agg in proposals.aggregates(db, None, agency=agency, groups=("agency",))["agency"]:
        total = agg
    found: list[Proposal] = []
    if details:
        found, _n = proposals.search(db, proposals.ProposalFilter(agency=agency))
    return AgencyView(
        agency=agency,
        head=users.head_of(db, agency),
        open_count=open_count,
        overdue_count=overdue,
        due_soon_count=soon,
        reports=reports,
        this_month=this_month,
        last_month=last_month,
        rates={m: evaluation.agency_rate(db, ref, agency, m) for m in (this_month, last_month)},
        proposal_total=total,
        proposals=found,
    )
