"""E-mail the reporter when their report moves (SP4N-LAPOR!: "the reporter is notified").

Notifications ride on the report events: :class:`NotifyingSink` wraps the portal's event sink, and a
:class:`Notifier` thread looks the report up by its tracking code and sends one short message in
Bahasa Indonesia (with an English line) to the contact e-mail the citizen gave, if any. The message
carries the tracking code, the new status and the link to the status page: never the report's text,
so a forwarded or misdirected e-mail reveals nothing else. SMTP failures are retried with backoff;
a message still failing after the last attempt is logged and counted (the status page stays the
source of truth).
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Report
from portal.services.events import EventSink

log = logging.getLogger(__name__)

# event -> (subject, Indonesian sentence, English sentence)
MESSAGES: dict[str, tuple[str, str, str]] = {
    "created": ("Laporan diterima", "Laporan Anda sudah kami terima.", "We have received your report."),
    "verified": (
        "Laporan diverifikasi",
        "Laporan Anda sudah diverifikasi oleh admin.",
        "Your report was verified.",
    ),
    "dispatched": (
        "Laporan diteruskan",
        "Laporan Anda sudah diteruskan ke instansi yang bertanggung jawab.",
        "Your report was forwarded to the responsible agency.",
    ),
    "responded": ("Tanggapan instansi", "Instansi sudah menanggapi laporan Anda.", "The agency has replied."),
    "closed": ("Laporan selesai", "Laporan Anda sudah ditutup.", "Your report was closed."),
    "reopened": ("Laporan dibuka kembali", "Laporan Anda dibuka kembali.", "Your report was reopened."),
}
RESOLUTIONS = {
    "resolved_direct": "diselesaikan langsung oleh instansi",
    "needs_budget": "memerlukan penganggaran (usulan anggaran)",
    "rejected": "ditolak",
    "duplicate": "digabung dengan laporan lain yang sama",
}


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
        password = env.get("BCC_PORTAL_SMTP_PASSWORD")
        if not password and env.get("BCC_PORTAL_SMTP_PASSWORD_FILE"):
            password = Path(env["BCC_PORTAL_SMTP_PASSWORD_FILE"]).read_text(encoding="utf-8").strip()
        return cls(
            host=host,
            port=int(env.get("BCC_PORTAL_SMTP_PORT", "25")),
            sender=env.get("BCC_PORTAL_SMTP_FROM", cls.sender),
            username=env.get("BCC_PORTAL_SMTP_USERNAME") or None,
            password=password or None,
            starttls=env.get("BCC_PORTAL_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
        )


class Notifier:
    """One sender thread fed by a queue; ``enqueue`` is cheap and safe from any thread."""

    def __init__(
        self,
        smtp: SmtpSettings,
        sessions: Callable[[], Session],
        public_url: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.smtp = smtp
        self._sessions = sessions
        self._public_url = public_url.rstrip("/")
        self._sleep = sleep
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.skipped_full = 0

    def enqueue(self, code: str, event: str) -> None:
        try:
            self._queue.put_nowait((code, event))
        except queue.Full:
            self.skipped_full += 1
            log.warning("notification queue full; dropped %s for %s", event, code)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="portal-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (bounded by ``timeout_s``), then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            code, event = item
            try:
                message = self.compose(code, event)
            except Exception:  # a lookup failure must not end the thread
                log.exception("notification lookup failed for %s", code)
                continue
            if message is not None:
                self._send(message)

    def compose(self, code: str, event: str) -> EmailMessage | None:
        """The e-mail for ``event`` on report ``code``, or None when the reporter left no e-mail."""
        with self._sessions() as db:
            report = db.scalar(select(Report).where(Report.code == code))
            if report is None or not report.contact_email or event not in MESSAGES:
                return None
            subject, text_id, text_en = MESSAGES[event]
            lines = [f"Kode laporan / tracking code: {report.code}", "", text_id]
            if event == "closed" and report.resolution in RESOLUTIONS:
                lines.append(f"Hasil: {RESOLUTIONS[report.resolution]}.")
            lines += [
                f"Lihat status dan riwayatnya: {self._public_url}/laporan/{report.code}",
                "",
                f"{text_en} Status: {report.status}.",
                "",
                "Pusat Komando Kota Binjai - e-mail ini dikirim otomatis, mohon tidak dibalas.",
            ]
            msg = EmailMessage()
            msg["Subject"] = f"[{report.code}] {subject}"
            msg["From"] = self.smtp.sender
            msg["To"] = report.contact_email
            msg.set_content("\n".join(lines))
            return msg

    def _send(self, msg: EmailMessage) -> None:
        delay = 1.0
        for attempt in range(1, self.smtp.attempts + 1):
            try:
                with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_s) as smtp:
                    if self.smtp.starttls:
                        smtp.starttls(context=ssl.create_default_context())
                    if self.smtp.username and self.smtp.password:
                        smtp.login(self.smtp.username, self.smtp.password)
                    smtp.send_message(msg)
                self.sent += 1
                return
            except (OSError, smtplib.SMTPException) as err:
                if attempt == self.smtp.attempts:
                    self.failed += 1
                    log.error(
                        "notification to report %s failed after %d attempts: %s", msg["Subject"], attempt, err
                    )
                    return
                self._sleep(delay)
                delay = min(delay * 2, 60.0)


class NotifyingSink:
    """An :class:`EventSink` that also queues the reporter's e-mail for each lifecycle event."""

    def __init__(self, inner: EventSink, notifier: Notifier) -> None:
        self.inner = inner
        self.notifier = notifier

    def report_event(self, payload: dict[str, Any]) -> None:
        self.inner.report_event(payload)
        self.notifier.enqueue(str(payload.get("report")), str(payload.get("event")))

    def backlog_changed(self) -> None:
        self.inner.backlog_changed()

    def __getattr__(self, name: str) -> Any:  # the console uses the MQTT sink's command methods
        return getattr(self.inner, name)
