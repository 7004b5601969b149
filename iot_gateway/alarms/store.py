"""The evaluator's memory across restarts, in the portal's database (tables of portal migration 0009)
or in a SQLite file of its own (the same tables, created on first use).

- ``alarm_states``: the last record of every alarm that ever left ``normal``;
- ``alarm_events``: the audit history of every transition, which doubles as the outbox of
  ``<base>/alarms/events`` (``published_at`` is set once the broker acknowledged the event);
- ``alarm_lease``: which evaluator is the active one when a standby runs (``Lease``).

Each batch of transitions is committed before anything is published, so a restart resumes exactly the
states the broker was told about, or newer ones: an active alarm is neither lost nor raised twice.

The portal maps the same tables in ``portal/models.py`` (this package may not import the portal);
``tests/iot_gateway/alarms/test_store.py`` compares these definitions with the migrated database on
SQLite and PostgreSQL, so the two cannot drift.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

METADATA = MetaData()
ALARM_ID_LEN = 120  # <rule>.<device>: two identifiers of at most 48 characters

alarm_states = Table(
    "alarm_states",
    METADATA,
    Column("id", String(ALARM_ID_LEN), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("record", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
alarm_events = Table(
    "alarm_events",
    METADATA,
    Column("seq", Integer, primary_key=True),
    Column("alarm", String(ALARM_ID_LEN), nullable=False, index=True),
    Column("event", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("who", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("ix_alarm_events_unpublished", "published_at", "seq"),
)
alarm_lease = Table(
    "alarm_lease",
    METADATA,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
TABLES = ("alarm_states", "alarm_events", "alarm_lease")

# The portal's tables the evaluator writes alarm e-mails into (migration 0010): the outbox the portal's
# workers send from, and the staff accounts it reads addresses from. Only in the portal's database (a
# state file of our own has neither: no e-mail then); never created here.
PORTAL_METADATA = MetaData()
notifications = Table(
    "notifications",
    PORTAL_METADATA,
    Column("id", Integer, primary_key=True),
    Column("code", String(20), nullable=False),
    Column("event", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recipient", String(200)),
    Column("subject", String(200)),
    Column("body", Text),
    Column("dedupe_key", String(64)),
    Column("sent_at", DateTime(timezone=True)),
    Column("channel", String(8), nullable=False),  # "email" or "sms" (migration 0014)
)
staff = Table(
    "users",
    PORTAL_METADATA,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("email", String(200)),
    Column("lang", String(2), nullable=False),
    Column("phone", String(20)),
)


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: str
    email: str  # "" when the account has a phone only
    lang: str
    phone: str = ""  # an Indonesian mobile number in E.164, for alarm SMS


@dataclass(frozen=True)
class Notice:
    """One alarm e-mail or SMS for the portal's outbox; ``key`` is unique per occurrence, recipient, kind
    and channel."""

    key: str
    event: str  # alarm_raised, escalation, daily_summary
    recipient: str  # an e-mail address, or a phone number for an SMS
    subject: str
    body: str
    channel: str = "email"  # or "sms" (``body`` is then the text, within one SMS)


class StoreError(RuntimeError):
    pass


def engine_for(url: str) -> Engine:
    """SQLite (WAL; synchronous NORMAL, as the portal's: a commit survives a crash of the process, a power
    cut may lose the last ones) or PostgreSQL (psycopg 3)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: object) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class AlarmStore:
    """``create``: make the tables if missing (a state file of our own); otherwise they must exist
    (the portal's database, migrated with ``bcc portal migrate``)."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        if create and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = engine_for(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        if create:
            METADATA.create_all(self.engine)
        found = inspect(self.engine)
        missing = [t for t in TABLES if not found.has_table(t)]
        if missing:
            self.engine.dispose()
            raise StoreError(
                f"the database has no table {', '.join(missing)}: apply the portal's migrations "
                "(bcc portal migrate) or use a state file (--state)"
            )
        # Alarm e-mails need the portal's outbox and staff accounts at migration 0010 or later.
        self.notifying = all(
            found.has_table(t.name)
            and {c.name for c in t.c} <= {c["name"] for c in found.get_columns(t.name)}
            for t in (notifications, staff)
        )

    def _time(self, ts: float) -> datetime:
        """SQLite keeps no time zone: naive UTC there, as the portal's UTCDateTime stores it."""
        dt = datetime.fromtimestamp(ts, UTC)
        return dt.replace(tzinfo=None) if self._sqlite else dt

    @staticmethod
    def _seconds(dt: datetime) -> float:
        return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()

    def load(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alarm_states.c.id, alarm_states.c.record)).all()
        return {alarm_id: json.loads(record) for alarm_id, record in rows}

    def save(
        self,
        records: Mapping[str, Mapping[str, Any]],
        events: Iterable[tuple[float, Mapping[str, Any]]],
        now: float,
        notices: Sequence[Notice] = (),
    ) -> None:
        """Alarm records, their events (time, payload) and their e-mails in one transaction."""
        events = list(events)
        severity = {e["alarm"]: e["severity"] for _, e in events}
        rows = [
            {
                "id": alarm_id,
                "state": rec["state"],
                "active": bool(rec["active"]),
                "severity": rec.get("severity") or severity.get(alarm_id, ""),
                "record": json.dumps(rec),
                "updated_at": self._time(now),
            }
            for alarm_id, rec in records.items()
        ]
        upsert = pg_insert(alarm_states) if not self._sqlite else sqlite_insert(alarm_states)
        upsert = upsert.on_conflict_do_update(
            index_elements=["id"],
            set_={c: upsert.excluded[c] for c in ("state", "active", "severity", "record", "updated_at")},
        )
        with self.engine.begin() as conn:
            if rows:
                conn.execute(upsert, rows)
            if events:
                conn.execute(
                    insert(alarm_events),
                    [
                        {
                            "alarm": e["alarm"],
                            "event": e["event"],
                            "state": e["state"],
                            "severity": e["severity"],
                            "who": e["who"],
                            "note": e["note"],
                            "at": self._time(ts),
                            "body": json.dumps(e),
                        }
                        for ts, e in events
                    ],
                )
            self._enqueue(conn, notices)

    def enqueue(self, notices: Sequence[Notice]) -> None:
        """Alarm e-mails into the portal's outbox; one that exists already (same key) is not added again."""
        if notices:
            with self.engine.begin() as conn:
                self._enqueue(conn, notices)

    def _enqueue(self, conn: Connection, notices: Sequence[Notice]) -> None:
        if not notices or not self.notifying:
            return
        # The outbox's send times are the portal workers' real time, whatever clock judges the alarms.
        at = self._time(time.time())
        new = pg_insert(notifications) if not self._sqlite else sqlite_insert(notifications)
        conn.execute(
            new.on_conflict_do_nothing(index_elements=["dedupe_key"]),
            [
                {
                    "code": "",
                    "event": n.event,
                    "created_at": at,
                    "next_at": at,
                    "attempts": 0,
                    "error": "",
                    "kind": "alarm",
                    "recipient": n.recipient,
                    "subject": n.subject[:200],
                    "body": n.body,
                    "dedupe_key": n.key,
                    "channel": n.channel,
                }
                for n in notices
            ],
        )

    def staff(self) -> list[StaffMember]:
        """Active portal accounts with an e-mail address or a phone number, by username."""
        if not self.notifying:
            return []
        reachable = or_(
            and_(staff.c.email.is_not(None), staff.c.email != ""),
            and_(staff.c.phone.is_not(None), staff.c.phone != ""),
        )
        query = (
            select(staff.c.username, staff.c.role, staff.c.email, staff.c.lang, staff.c.phone)
            .where(staff.c.active.is_(True), reachable)
            .order_by(staff.c.username)
        )
        with self.engine.connect() as conn:
            return [
                StaffMember(u, r, e or "", lang or "id", p or "")
                for u, r, e, lang, p in conn.execute(query).all()
            ]

    def events_since(self, since: float) -> list[tuple[str, str, float, str]]:
        """(alarm, event, at, who) of every transition after ``since``, oldest first."""
        query = (
            select(alarm_events.c.alarm, alarm_events.c.event, alarm_events.c.at, alarm_events.c.who)
            .where(alarm_events.c.at > self._time(since))
            .order_by(alarm_events.c.seq)
        )
        with self.engine.connect() as conn:
            return [(a, e, self._seconds(at), w) for a, e, at, w in conn.execute(query).all()]

    def forget(self, alarm_ids: Iterable[str]) -> None:
        """Drop the records of alarms whose rule is gone (their history stays)."""
        ids = list(alarm_ids)
        if ids:
            with self.engine.begin() as conn:
                conn.execute(delete(alarm_states).where(alarm_states.c.id.in_(ids)))

    def unpublished(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        query = (
            select(alarm_events.c.seq, alarm_events.c.body)
            .where(alarm_events.c.published_at.is_(None))
            .order_by(alarm_events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(seq, json.loads(body)) for seq, body in conn.execute(query).all()]

    def mark_published(self, seqs: list[int], now: float) -> None:
        if not seqs:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(alarm_events).where(alarm_events.c.seq.in_(seqs)).values(published_at=self._time(now))
            )

    def history(self, alarm_id: str | None = None) -> list[dict[str, Any]]:
        """The audit history, oldest first (every event with its ``seq``)."""
        query = select(alarm_events.c.seq, alarm_events.c.body).order_by(alarm_events.c.seq)
        if alarm_id is not None:
            query = query.where(alarm_events.c.alarm == alarm_id)
        with self.engine.connect() as conn:
            return [{"seq": seq, **json.loads(body)} for seq, body in conn.execute(query).all()]

    # --- standby ----------------------------------------------------------------------------------
    def take_lease(self, name: str, holder: str, now: float, lease_s: float) -> bool:
        """Become (or stay) the active evaluator of ``name`` unless another holder's lease is still
        valid. One UPDATE or INSERT decides, so two evaluators never both hold it."""
        until = self._time(now + lease_s)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(alarm_lease)
                .where(alarm_lease.c.name == name)
                .where((alarm_lease.c.holder == holder) | (alarm_lease.c.expires_at < self._time(now)))
                .values(holder=holder, expires_at=until)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(select(alarm_lease.c.holder).where(alarm_lease.c.name == name)).first()
            if exists is not None:
                return False
            new = pg_insert(alarm_lease) if not self._sqlite else sqlite_insert(alarm_lease)
            inserted = conn.execute(
                new.values(name=name, holder=holder, expires_at=until).on_conflict_do_nothing()
            ).rowcount
            return bool(inserted)

    def release_lease(self, name: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(alarm_lease).where(alarm_lease.c.name == name, alarm_lease.c.holder == holder)
            )

    def close(self) -> None:
        """Dispose of the connections. An operation may still run in a worker thread (the service's
        task was cancelled while awaiting it): its connection is returned after dispose and would stay
        open until the garbage collector finds it, so wait for it first (at most 5 s)."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        deadline = time.monotonic() + 5.0
        while checked_out is not None and checked_out() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # poll interval of a bounded wait for the worker thread, at shutdown only
        self.engine.dispose()
