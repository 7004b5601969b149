"""SQLAlchemy 2 models of the portal: reports, their history and photos, staff users and sessions.

The citizen's original text is written once (``Report.title``/``description``) and never updated; staff
replies, citizen additions and every transition are rows of ``ReportEntry`` (who, when, what).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bcc_contract.reports import OPEN_STATUSES as OPEN_STATUSES
from bcc_contract.reports import RESOLUTIONS as RESOLUTIONS
from bcc_contract.reports import STATUSES as STATUSES
from bcc_contract.reports import ReportStatus
from bcc_contract.reports import Resolution as Resolution

# The report statuses and resolutions are part of the MQTT contract (they appear in report events).
Status = ReportStatus
Privacy = Literal["public", "anonymous", "confidential"]
PRIVACIES: tuple[Privacy, ...] = ("public", "anonymous", "confidential")
Role = Literal["admin", "agency", "kepala_dinas", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "agency", "kepala_dinas", "operator", "viewer")
# Roles that belong to one agency (``User.agency``): its officers and its head (at most one active head
# per agency: the partial unique index below, migration 0013).
AGENCY_ROLES: tuple[Role, ...] = ("agency", "kepala_dinas")
EntryKind = Literal[
    "created",
    "verified",
    "dispatched",
    "responded",
    "closed",
    "reopened",
    "info",
    "rated_solved",
    "rated_partly",
    "rated_unsolved",
    "to_anonymous",
    "to_confidential",
    "redacted",
]
# The reporter's verdict on a closed report (SP4N-LAPOR!'s "tanggapan pelapor"): one per closure.
FEEDBACKS = ("solved", "partly", "unsolved")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


# One active head per agency, on every backend (a partial unique index; migration 0013_agency_notify).
ONE_HEAD = "role = 'kepala_dinas' AND active"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index(
            "uq_users_one_head",
            "agency",
            unique=True,
            sqlite_where=text(ONE_HEAD),
            postgresql_where=text(ONE_HEAD),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # TOTP second factor (portal/services/twofactor.py): the base32 secret once enrolled, and the last
    # time step accepted, so that a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Alarm notifications (docs/alarms.md, "Notifications"): where and in which language ("id"/"en").
    email: Mapped[str | None] = mapped_column(String(200))
    lang: Mapped[str] = mapped_column(String(2), default="id", server_default="id")
    # an Indonesian mobile number (+62...) for alarm SMS (migration 0014; ``bcc admin set-contact --phone``)
    phone: Mapped[str | None] = mapped_column(String(20))


class StaffSession(Base):
    """Server-side session: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "staff_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # True between the password and the second factor: such a session opens only the 2FA pages.
    pending_2fa: Mapped[bool] = mapped_column(Boolean, default=False)
    # the secret being enrolled (shown to the user, saved on the account once a code matches)
    totp_candidate: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(Base):
    """A one-time recovery code of an account's second factor; only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_status_created", "status", "created_at"),
        Index("ix_reports_category_kelurahan", "category", "kelurahan"),
        # The queue lists oldest first across several statuses: walk this index and stop after a page.
        Index("ix_reports_created_at", "created_at"),
        # an offline draft's idempotency key (portal.services.reporter_keys.draft_hash): one report each
        Index("ix_reports_draft_hash", "draft_hash", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    agency: Mapped[str | None] = mapped_column(String(32), index=True)
    kecamatan: Mapped[str] = mapped_column(String(32))
    kelurahan: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(300), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    privacy: Mapped[str] = mapped_column(String(16))
    contact_name: Mapped[str] = mapped_column(String(120), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    # how the reporter wants to hear of the report ("email" or "sms" to ``contact_phone``; migration 0014);
    # the language is ``lang`` (the form's, migration 0015)
    notify_channel: Mapped[str] = mapped_column(String(8), default="email", server_default="email")
    source: Mapped[str] = mapped_column(String(16), default="web")
    status: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(String(16))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verify_due: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    respond_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_late: Mapped[bool] = mapped_column(Boolean, default=False)
    respond_late: Mapped[bool] = mapped_column(Boolean, default=False)
    # the reporter's verdict on the latest closure (FEEDBACKS) and when it was given
    feedback: Mapped[str | None] = mapped_column(String(16))
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of the reporter's secret key (portal.services.reporter_keys); None only for reports stored
    # before keys existed, until their reporter's browser claims one
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the idempotency key of the offline draft this report came from (the web app's drafts,
    # docs/portal.md "Offline drafts"); None for every other submission
    draft_hash: Mapped[str | None] = mapped_column(String(64))
    # the language of the page the report was made from: the reporter's e-mails are written in it
    lang: Mapped[str] = mapped_column(String(2), default="id", server_default="id")
    # when the erasure job (portal/services/erasure.py) blanked the contact details
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entries: Mapped[list[ReportEntry]] = relationship(
        back_populates="report", order_by="ReportEntry.id", cascade="all, delete-orphan"
    )
    photos: Mapped[list[Photo]] = relationship(order_by="Photo.id", cascade="all, delete-orphan")
    duplicate_of: Mapped[Report | None] = relationship(remote_side=[id])


class ReportEntry(Base):
    """One line of a report's history: a transition, a staff reply or a citizen's addition."""

    __tablename__ = "report_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Who the citizen sees: an agency's name for replies, "pelapor" for the citizen, "admin" otherwise.
    actor_label: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[Report] = relationship(back_populates="entries")
    actor: Mapped[User | None] = relationship()


class Photo(Base):
    """A re-encoded photo stored under a random name in ``Settings.media_dir``."""

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RateHit(Base):
    """One counted request (a submission, a login attempt) for the shared sliding-window rate limits:
    kept in the database so that every worker and every host counts the same hits."""

    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_scope_key_at", "scope", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CommandAudit(Base):
    """One command sent from the operator console: who, what, when, its transaction and the result.

    ``status`` is ``pending`` until the gateway's response arrives (then one of the statuses of
    docs/mqtt.md), or ``timeout`` when no response came within ``PortalMqttSettings.command_response_s``.
    """

    __tablename__ = "command_audit"
    __table_args__ = (Index("ix_command_audit_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction: Mapped[str] = mapped_column(String(128), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(200))
    device: Mapped[str] = mapped_column(String(48), index=True)
    command: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), index=True)
    error: Mapped[str] = mapped_column(Text, default="")
    readback: Mapped[str] = mapped_column(Text, default="")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduleRun(Base):
    """One due time of a schedule, claimed by exactly one portal worker (the unique key decides)."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule", "due_at", name="uq_schedule_runs_slot"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scene: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(24))  # running | ok | failed
    detail: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """One e-mail to send (the outbox): written when the event happens, sent by whichever portal worker
    claims it first, kept across restarts, retried with backoff (portal/services/notify.py). ``kind``
    "report": a reporter's e-mail, composed at sending from the report; "alarm": an operator's alarm
    e-mail, written whole (``recipient``, ``subject``, ``body``) by ``bcc alarms``, which defines the
    same columns in iot_gateway/alarms/store.py. ``dedupe_key`` (unique) makes an alarm e-mail exist
    once per alarm occurrence, recipient and kind, whoever writes it how often.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "sent_at", "failed_at", "next_at"),
        Index("uq_notifications_dedupe_key", "dedupe_key", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str] = mapped_column(Text, default="")
    # The reporter's key for the ``created`` e-mail: the one place it exists in clear, and only until
    # that e-mail is sent or given up (erased in the same UPDATE; docs/security.md, "Reporter secret and
    # confidential reports").
    reporter_key: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="report", server_default="report")
    recipient: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    # what the event is about beyond the report's own state: the new stage of its development proposal
    # (event ``proposal``; migration 0011), so that each stage's e-mail names its own stage
    detail: Mapped[str | None] = mapped_column(String(32))
    # "email" or "sms" for a row written whole (an alarm SMS: ``recipient`` is a phone number, ``body``
    # the text); a reporter's row follows its report's ``notify_channel`` (migration 0014)
    channel: Mapped[str] = mapped_column(String(8), default="email", server_default="email")


class ContactView(Base):
    """One view of a reporter's contact details by a staff member (the personal-data access log)."""

    __tablename__ = "contact_views"
    __table_args__ = (Index("ix_contact_views_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Redaction(Base):
    """Staff removed personal data from a citizen's text: the original, kept for admins only, and who."""

    __tablename__ = "redactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(16))  # title | description
    original: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a periodic job for one slot (a day), claimed by exactly one worker: the unique key
    decides, on every backend."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_job_runs_slot"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str] = mapped_column(String(32))
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(24))  # running | ok | failed
    detail: Mapped[str] = mapped_column(Text, default="")


class AlarmStateRow(Base):
    """The last record of one alarm (``<rule>.<device>``), written by ``bcc alarms`` (docs/alarms.md);
    ``record`` is its JSON record. The service defines the same table in iot_gateway/alarms/store.py."""

    __tablename__ = "alarm_states"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[str] = mapped_column(String(8))
    record: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlarmEventRow(Base):
    """One alarm transition (the audit history, who and when); ``body`` is the JSON published on MQTT,
    ``published_at`` when the broker acknowledged it (the evaluator's outbox)."""

    __tablename__ = "alarm_events"
    __table_args__ = (Index("ix_alarm_events_unpublished", "published_at", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm: Mapped[str] = mapped_column(String(120), index=True)
    event: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    who: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlarmLease(Base):
    """Which alarm evaluator is the active one (the others stand by) and until when."""

    __tablename__ = "alarm_lease"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Proposal(Base):
    """A development proposal (usulan pembangunan): one or more reports closed as ``needs_budget`` carried
    into the regional planning cycle (portal/services/proposals.py, docs/portal.md). Amounts in rupiah."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_year_stage", "budget_year", "stage"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kecamatan: Mapped[str] = mapped_column(String(32), index=True)
    kelurahan: Mapped[str] = mapped_column(String(32))
    agency: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(32))
    estimated_cost: Mapped[int | None] = mapped_column(BigInteger)
    funded_amount: Mapped[int | None] = mapped_column(BigInteger)
    priority: Mapped[str] = mapped_column(String(16))  # PRIORITIES
    channel: Mapped[str] = mapped_column(String(32))  # CHANNELS
    budget_year: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(32))  # portal.services.proposals.STAGES or an outcome
    stage_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entries: Mapped[list[ProposalEntry]] = relationship(
        back_populates="proposal", order_by="ProposalEntry.id", cascade="all, delete-orphan"
    )
    links: Mapped[list[ProposalReport]] = relationship(
        back_populates="proposal", order_by="ProposalReport.id", cascade="all, delete-orphan"
    )


class ProposalEntry(Base):
    """One line of a proposal's history: created, a report joined, a stage decided, a cost estimated.

    ``actor_label`` is what the public sees (an agency's name, ``admin``), never a staff member's name;
    ``actor_id`` says who for the staff."""

    __tablename__ = "proposal_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # created | linked | stage | cost
    stage: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    proposal: Mapped[Proposal] = relationship(back_populates="entries")
    actor: Mapped[User | None] = relationship()


class ProposalReport(Base):
    """A report carried by a proposal; a report belongs to at most one proposal."""

    __tablename__ = "proposal_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), unique=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proposal: Mapped[Proposal] = relationship(back_populates="links")
    report: Mapped[Report] = relationship()
