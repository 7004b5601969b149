"""Alarm e-mails in tests: staff accounts with addresses in the portal's database, the outbox's alarm
rows, and the portal's own sender (portal/services/notify.py) draining them to a real SMTP server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from portal.db import make_engine, session_factory
from portal.models import Notification
from portal.reference import load_reference
from portal.services import users
from portal.services.notify import ALARM_KIND, Notifier, SmtpSettings
from portal.services.sms import SmsSettings, TwilioSms
from tests.support.wait import eventually_sync


@dataclass(frozen=True)
class OutboxRow:
    event: str
    recipient: str
    subject: str
    body: str
    sent: bool
    channel: str = "email"


def add_staff(
    url: str, people: list[tuple[str, str, str, str]], phones: dict[str, str] | None = None
) -> None:
    """Accounts (username, role, e-mail, language) with the ``phones`` by username, as
    ``bcc admin create-user`` and ``set-contact`` do."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            for name, role, email, lang in people:
                user = users.create_user(
                    db, load_reference(), name, role, "a-long-password-123", datetime.now(UTC)
                )
                users.set_contact(db, user, email, lang, (phones or {}).get(name))
    finally:
        engine.dispose()


def alarm_outbox(url: str) -> list[OutboxRow]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            rows = db.scalars(
                select(Notification).where(Notification.kind == ALARM_KIND).order_by(Notification.id)
            ).all()
            return [
                OutboxRow(
                    r.event,
                    r.recipient or "",
                    r.subject or "",
                    r.body or "",
                    r.sent_at is not None,
                    r.channel,
                )
                for r in rows
            ]
    finally:
        engine.dispose()


@contextlib.contextmanager
def portal_senders(
    url: str, smtp_port: int, workers: int = 2, sms: SmsSettings | None = None
) -> Iterator[list[Notifier]]:
    """``workers`` portal workers' outbox senders on the database at ``url`` (each its own engine), with
    the SMS provider of ``sms`` if given."""
    engines = [make_engine(url) for _ in range(workers)]
    providers = [TwilioSms(sms) if sms is not None else None for _ in engines]
    senders = [
        Notifier(
            SmtpSettings("127.0.0.1", smtp_port), session_factory(e), "http://portal.test", poll_s=0.05, sms=p
        )
        for e, p in zip(engines, providers, strict=True)
    ]
    for sender in senders:
        sender.start()
    try:
        yield senders
    finally:
        for sender in senders:
            sender.stop()
        for engine in engines:
            engine.dispose()
        for provider in providers:
            if provider is not None:
                provider.close()


def drain(url: str, smtp_port: int, sms: SmsSettings | None = None) -> list[OutboxRow]:
    """Two portal workers send the alarm outbox (e-mail, and SMS through ``sms``'s provider) until every
    row is sent; the rows."""
    with portal_senders(url, smtp_port, sms=sms) as senders:
        eventually_sync(lambda: all(r.sent for r in alarm_outbox(url)), timeout=15)
        rows = alarm_outbox(url)
        assert sum(s.sent for s in senders) == len(rows)  # each row sent by exactly one of them
    return rows
