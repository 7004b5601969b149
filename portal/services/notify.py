"""E-mail the reporter when their report moves (SP4N-LAPOR!: "the reporter is notified"), and send
the operators' alarm e-mails that ``bcc alarms`` writes into the same outbox (docs/alarms.md).

Notifications ride on the report events: :class:`NotifyingSink` wraps the portal's event sink and
adds a row to the ``notifications`` table (the outbox) in the very transaction of each event; a
:class:`Notifier` thread in every portal worker claims due rows (a claim is a conditional UPDATE,
so one worker sends each), looks the report up by its tracking code and sends one short message in
Bahasa Indonesia (with an English line) to the contact e-mail the citizen gave, if any. The message
carries the tracking code, the new status and the link to the status page: never the report's text,
so a forwarded or misdirected e-mail reveals nothing else. The ``created`` e-mail also carries the
reporter's secret key (as a link), the one copy besides the submitter's browser: the outbox row holds
it in clear only until that e-mail is sent or given up. A failed send is retried with backoff
(``next_at``) up to ``attempts`` times, then marked failed, logged and counted; unsent rows survive
a restart and are sent by the next start. The status page stays the source of truth.

A reporter who chose SMS on the form (``Report.notify_channel``) gets the same events as one SMS each, in
the form's language, through the SMS provider (portal/services/sms.py): the code and the status link,
within 160 GSM-7 characters (bcc_common/gsm7.py), never the reporter's key. Operators' alarm SMS are
written whole by ``bcc alarms`` (``channel`` "sms"). A provider's permanent refusal (a bad number) is
given up at once; a transient one (down, timeout, 429/5xx) is retried with the same backoff.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bcc_common.gsm7 import sms_text
from bcc_common.secrets import read_secret
from bcc_common.timefmt import utc_now
from portal.db import writer
from portal.i18n import translate
from portal.models import Notification, Report
from portal.reference import lang_or_default
from portal.services.events import EventSink
from portal.services.sms import SmsError, SmsProvider

log = logging.getLogger(__name__)

# Outbox rows written whole by ``bcc alarms`` (kind "alarm") and by portal/services/agency.py (kind
# "agency": officers' and heads' e-mails); the reporters' rows are kind "report", composed at sending.
ALARM_KIND = "alarm"
WRITTEN_KINDS = (ALARM_KIND, "agency")

# The events a reporter is told of by e-mail, in the language of the page they reported from (the
# report's ``lang``): the subject is the message ``email_subject_<event>``, the sentence
# ``email_text_<event>`` (portal/locale). ``proposal``: the development proposal carrying the report moved
# (portal/services/proposals.py); the stage is the row's ``detail``.
EVENTS = ("created", "verified", "dispatched", "responded", "closed", "reopened", "proposal")
RESOLUTIONS = ("resolved_direct", "needs_budget", "rejected", "duplicate")


@dataclass(frozen=True)
class Sms:
    """One SMS to send: a phone number in E.164 and a text in the GSM 7-bit alphabet."""

    to: str
    text: str


def report_sms(event: str, lang: str, code: str, url: str, stage: str | None = None) -> str | None:
    """The SMS of ``event`` on report ``code`` in ``lang`` (the texts ``sms_<event>`` of
    portal/locale/{id,en}/LC_MESSAGES/messages.po), one SMS long; ``stage``: the proposal's new stage
    (a key), shortened if the text would not fit."""
    if event not in EVENTS:
        return None
    language = lang_or_default(lang)
    values = {"code": code, "url": url, "stage": translate(f"stage_{stage}", language) if stage else ""}
    return sms_text(translate(f"sms_{event}", language), values, shrink="stage")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "noreply@binjaikota.go.id"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    attempts: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """``BCC_PORTAL_SMTP_HOST`` (unset: no e-mail), ``_PORT``, ``_FROM``, ``_USERNAME``,
        ``_PASSWORD`` (or ``_PASSWORD_FILE``), ``_STARTTLS`` (true/false)."""
        host = env.get("BCC_PORTAL_SMTP_HOST")
        if not host:
            return None
        password = read_secret(env, "BCC_PORTAL_SMTP_PASSWORD")
        return cls(
            host=host,
            port=int(env.get("BCC_PORTAL_SMTP_PORT", "25")),
            sender=env.get("BCC_PORTAL_SMTP_FROM", cls.sender),
            username=env.get("BCC_PORTAL_SMTP_USERNAME") or None,
            password=password or None,
            starttls=env.get("BCC_PORTAL_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
        )


class Notifier:
    """The outbox's sender: one thread per portal worker; ``enqueue`` writes a row (any thread)."""

    CLAIM = timedelta(minutes=2)  # a worker that died holding a claim gives it up after this

    def __init__(
        self,
        smtp: SmtpSettings | None,
        sessions: Callable[[], Session],
        public_url: str,
        clock: Callable[[], datetime] = utc_now,
        poll_s: float = 1.0,
        sms: SmsProvider | None = None,
        attempts: int | None = None,
    ) -> None:
        self.smtp = smtp
        self.sms = sms
        self.attempts = attempts if attempts is not None else smtp.attempts if smtp is not None else 8
        self._sessions = sessions
        self._public_url = public_url.rstrip("/")
        self._clock = clock  # real time: retry delays are operations, not report history
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    @property
    def public_url(self) -> str:
        """The portal's public address, for links in e-mails written by others (portal/services/agency.py)."""
        return self._public_url

    def outbox_row(
        self, event: str, code: str, now: datetime, key: str = "", detail: str | None = None
    ) -> Notification | None:
        """The outbox row for ``event``, to add to the transaction that makes the event happen (with the
        reporter's key of a new report, kept only until the e-mail is sent or given up)."""
        if event not in EVENTS:
            return None
        return Notification(
            code=code,
            event=event,
            created_at=now,
            next_at=self._clock(),
            attempts=0,
            error="",
            reporter_key=key or None,
            detail=detail,
        )

    def wake(self) -> None:
        """New rows were committed: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="portal-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the message being sent; what is still due stays in the outbox for the next start."""
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.send_due()
            except Exception:  # a database hiccup must not end the thread
                log.exception("notification outbox unavailable")
                worked = False
            if not worked:
                self._wake.wait(self._poll_s)
                self._wake.clear()

    def send_due(self) -> bool:
        """Claim and send the due notifications, oldest first; True if any was handled."""
        now = self._clock()
        with self._sessions() as db:
            due = db.scalars(
                select(Notification.id)
                .where(
                    Notification.sent_at.is_(None),
                    Notification.failed_at.is_(None),
                    Notification.next_at <= now,
                    or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
                )
                .order_by(Notification.id)
                .limit(20)
            ).all()
        handled = False
        for nid in due:
            if self._stopping.is_set():
                break
            if self._claim(nid):
                handled = True
                self._deliver(nid)
        return handled

    def _claim(self, nid: int) -> bool:
        """Take notification ``nid`` for this worker (False: another worker has it, or it is done)."""
        now = self._clock()
        with self._sessions() as db, writer(db):
            result = db.execute(
                update(Notification)
                .where(
                    Notification.id == nid,
                    Notification.sent_at.is_(None),
                    Notification.failed_at.is_(None),
                    or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
                )
                .values(claimed_until=now + self.CLAIM)
            )
            db.commit()
        return bool(getattr(result, "rowcount", 0))

    def _deliver(self, nid: int) -> None:
        with self._sessions() as db:
            row = db.get(Notification, nid)
            assert row is not None
            code, event, attempts, key = row.code, row.event, row.attempts, row.reporter_key
            written = (row.recipient, row.subject, row.body) if row.kind in WRITTEN_KINDS else None
            detail, channel = row.detail, row.channel
        message: EmailMessage | Sms | None = None
        permanent = False
        try:
            if written is None:
                message = self.compose(code, event, key, detail)
            elif channel == "sms":
                message = Sms(written[0], written[2] or "") if written[0] else None
            else:
                message = self.written(*written)
            error, permanent = self._send(message) if message is not None else (None, False)
        except Exception as err:  # a lookup failure is retried like a send failure
            error = f"{type(err).__name__}: {err}"
        now = self._clock()
        values: dict[str, Any] = {"claimed_until": None, "attempts": attempts + 1}
        gave_up = error is not None and (permanent or attempts + 1 >= self.attempts)
        if error is None:
            values.update(sent_at=now, reporter_key=None)  # the key in clear lives no longer than this
        elif gave_up:
            values.update(failed_at=now, error=error[:2000], reporter_key=None)
        else:
            values.update(next_at=now + timedelta(seconds=min(2.0**attempts, 300.0)), error=error[:2000])
        with self._sessions() as db, writer(db):
            db.execute(update(Notification).where(Notification.id == nid).values(**values))
            db.commit()
        # counted once the row says so (a reader that sees the count also sees the row)
        if gave_up:
            self.failed += 1
            log.error("notification %s of report %s failed %d times: %s", event, code, attempts + 1, error)
        elif error is None and message is not None:
            self.sent += 1

    def compose(
        self, code: str, event: str, key: str | None = None, detail: str | None = None
    ) -> EmailMessage | Sms | None:
        """The e-mail for ``event`` on report ``code`` (the SMS if the reporter chose SMS), or None when
        the reporter left no address for their channel. ``key`` (the ``created`` e-mail only) is the
        reporter's secret key, sent as the link that opens the report's reporter actions in any browser
        (never by SMS: a text message is not kept secret by phones and operators)."""
        with self._sessions() as db:
            report = db.scalar(select(Report).where(Report.code == code))
            if report is None or event not in EVENTS:
                return None
            if report.notify_channel == "sms":
                url = f"{self._public_url}/laporan/{report.code}"
                text = report_sms(event, report.lang, report.code, url, detail)
                return Sms(report.contact_phone, text) if report.contact_phone and text else None
            if not report.contact_email:
                return None
            lang = lang_or_default(report.lang)
            lines = [
                translate("email_code", lang, code=report.code),
                "",
                translate(f"email_text_{event}", lang),
            ]
            if event == "closed" and report.resolution in RESOLUTIONS:
                lines.append(
                    translate(
                        "email_outcome",
                        lang,
                        outcome=translate(f"email_resolution_{report.resolution}", lang),
                    )
                )
            if event == "proposal" and detail:
                lines.append(translate("email_stage", lang, stage=translate(f"stage_{detail}", lang)))
            elif event != "proposal":
                lines.append(
                    translate("email_status", lang, status=translate(f"status_{report.status}", lang))
                )
            lines.append(
                translate("email_status_link", lang, url=f"{self._public_url}/laporan/{report.code}")
            )
            if key:
                lines += [
                    "",
                    translate("email_key", lang),
                    f"{self._public_url}/laporan/{report.code}/kunci/{key}",
                ]
            lines += ["", translate("email_footer", lang)]
            subject = translate(f"email_subject_{event}", lang)
            msg = EmailMessage()
            msg["Subject"] = f"[{report.code}] {subject}"
            msg["From"] = self.smtp.sender if self.smtp is not None else SmtpSettings.sender
            msg["To"] = report.contact_email
            msg.set_content("\n".join(lines))
            return msg

    def written(self, recipient: str | None, subject: str | None, body: str | None) -> EmailMessage | None:
        """An e-mail written whole by its producer (``bcc alarms``: the operators' alarm e-mails, in the
        recipient's language, docs/alarms.md); None when it has no recipient."""
        if not recipient:
            return None
        msg = EmailMessage()
        msg["Subject"] = subject or ""
        msg["From"] = self.smtp.sender if self.smtp is not None else SmtpSettings.sender
        msg["To"] = recipient
        msg.set_content(body or "")
        return msg

    def _send(self, message: EmailMessage | Sms) -> tuple[str | None, bool]:
        """Send ``message`` by its channel: (the error text or None, whether the error is permanent)."""
        if isinstance(message, Sms):
            if self.sms is None:
                return "no SMS provider configured (BCC_PORTAL_SMS_PROVIDER)", True
            try:
                self.sms.send(message.to, message.text)
            except SmsError as err:
                return str(err), err.permanent
            return None, False
        if self.smtp is None:
            return "no SMTP server configured (BCC_PORTAL_SMTP_HOST)", True
        return self._send_once(message), False

    def _send_once(self, msg: EmailMessage) -> str | None:
        """Send ``msg``; the error text, or None on success."""
        assert self.smtp is not None
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_s) as smtp:
                if self.smtp.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.smtp.username and self.smtp.password:
                    smtp.login(self.smtp.username, self.smtp.password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as err:
            return f"{type(err).__name__}: {err}"
        return None


class NotifyingSink:
    """An :class:`EventSink` that also writes the reporter's e-mail into the outbox for each lifecycle
    event, in the same transaction as the event itself (``stage``, called before the commit), so an
    event that happened always has its e-mail waiting, whatever happens to the process after the commit.
    """

    def __init__(self, inner: EventSink, notifier: Notifier) -> None:
        self.inner = inner
        self.notifier = notifier

    def stage(self, db: Session, event: str, code: str, now: datetime, key: str = "") -> None:
        row = self.notifier.outbox_row(event, code, now, key)
        if row is not None:
            db.add(row)

    def stage_detail(self, db: Session, event: str, code: str, now: datetime, detail: str) -> None:
        """The outbox row of an event about the report's proposal (``detail``: its new stage)."""
        row = self.notifier.outbox_row(event, code, now, detail=detail)
        if row is not None:
            db.add(row)

    def wake(self) -> None:
        """Rows staged by :meth:`stage_detail` were committed (no report event follows them)."""
        self.notifier.wake()

    def report_event(self, payload: dict[str, Any]) -> None:
        self.inner.report_event(payload)
        self.notifier.wake()  # its row was committed with the event

    def backlog_changed(self) -> None:
        self.inner.backlog_changed()

    def __getattr__(self, name: str) -> Any:  # the console uses the MQTT sink's command methods
        return getattr(self.inner, name)
