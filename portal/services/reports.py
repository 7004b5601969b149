"""Citizen-side services: submit, track, add information, reopen, the public list and similar reports."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session, selectinload

from portal.db import dbapi_cursor, raw_insert, writer
from portal.errors import InvalidInput, NotFound, TransitionRefused
from portal.models import FEEDBACKS, OPEN_STATUSES, PRIVACIES, Photo, Report, ReportEntry
from portal.reference import LANGS, Reference, lang_or_default
from portal.services import agency as agency_mail
from portal.services import deadlines, location, reporter_keys, visibility
from portal.services.events import EventSink, emit, stage
from portal.services.phone import mobile_id
from portal.services.photos import PhotoRejected, clean_photo, store_photo
from portal.services.ratelimit import RateLimiter
from portal.services.textclean import clean_text

REPORTS = cast(Table, Report.__table__)
ENTRIES = cast(Table, ReportEntry.__table__)
PHOTOS = cast(Table, Photo.__table__)
# Crockford-like alphabet without 0/O/1/I/L: readable over the phone. 12 symbols = 60 random bits.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MAX_DESCRIPTION = 4000
MAX_TITLE = 200
SIMILAR_RADIUS_M = 100.0
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")
# Binjai and its surroundings: a point outside this box is a typo, not a report location.
BBOX = (3.45, 3.75, 98.40, 98.60)


def new_code() -> str:
    # one draw from the OS random source, written in base 31 (not 12 draws: each one is a system call)
    n = secrets.randbelow(len(CODE_ALPHABET) ** 12)
    symbols = []
    for _ in range(12):
        n, digit = divmod(n, len(CODE_ALPHABET))
        symbols.append(CODE_ALPHABET[digit])
    raw = "".join(symbols)
    return f"BJ-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_code(text: str) -> str:
    """Accept codes typed in lower case, with spaces or without dashes."""
    raw = re.sub(r"[^0-9A-Za-z]", "", text).upper().removeprefix("BJ")
    return f"BJ-{raw[:4]}-{raw[4:8]}-{raw[8:12]}" if len(raw) == 12 else ""


@dataclass(frozen=True)
class ReportInput:
    """A submission as typed by the citizen (all strings, validated by :func:`validate`)."""

    category: str = ""
    title: str = ""
    description: str = ""
    kelurahan: str = ""
    address: str = ""
    lat: str = ""
    lon: str = ""
    privacy: str = "public"
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    notify_channel: str = "email"  # "email" or "sms" (to ``contact_phone``)
    lang: str = ""  # the form page's language (a hidden field): the reporter's e-mails and SMS are in it


NOTIFY_CHANNELS = ("email", "sms")


class OutsideBinjai(ValueError):
    """Coordinates that are numbers but not in Binjai."""


def parse_point(lat: str, lon: str) -> tuple[float, float] | None:
    """(lat, lon) inside Binjai (its box, then its kelurahan boundaries: portal.services.location),
    None when both are empty; ValueError otherwise."""
    if not lat.strip() and not lon.strip():
        return None
    la, lo = float(lat.replace(",", ".")), float(lon.replace(",", "."))
    if not (BBOX[0] <= la <= BBOX[1] and BBOX[2] <= lo <= BBOX[3]) or location.kelurahan_at(la, lo) is None:
        raise OutsideBinjai(f"{la}, {lo}")
    return la, lo


def validate(ref: Reference, inp: ReportInput) -> dict[str, str]:
    """Field -> message key for every problem of ``inp`` (empty when it is acceptable)."""
    errors: dict[str, str] = {}
    if inp.category not in ref.categories:
        errors["category"] = "err_category"
    if not inp.title.strip():
        errors["title"] = "err_title_required"
    elif len(inp.title) > MAX_TITLE:
        errors["title"] = "err_title_long"
    if not inp.description.strip():
        errors["description"] = "err_description_required"
    elif len(inp.description) > MAX_DESCRIPTION:
        errors["description"] = "err_description_long"
    if ref.kecamatan_of(inp.kelurahan) is None:
        errors["kelurahan"] = "err_kelurahan"
    if len(inp.address) > 300:
        errors["address"] = "err_address_long"
    try:
        parse_point(inp.lat, inp.lon)
    except OutsideBinjai:
        errors["lat"] = "err_outside"
    except ValueError:
        errors["lat"] = "err_point"
    if inp.privacy not in PRIVACIES:
        errors["privacy"] = "err_privacy"
    if len(inp.contact_name) > 120:
        errors["contact_name"] = "err_name_long"
    if inp.notify_channel not in NOTIFY_CHANNELS:
        errors["notify_channel"] = "err_channel"
    elif inp.notify_channel == "sms" and mobile_id(inp.contact_phone) is None:
        errors["contact_phone"] = "err_phone_sms"
    if "contact_phone" not in errors and inp.contact_phone and not _PHONE.match(inp.contact_phone):
        errors["contact_phone"] = "err_phone"
    if inp.contact_email and not _EMAIL.match(inp.contact_email):
        errors["contact_email"] = "err_email"
    return errors


_INPUT_FIELDS = tuple(f.name for f in fields(ReportInput))


def _cleaned(inp: ReportInput) -> ReportInput:
    """``inp`` without control characters (portal.services.textclean); the same object when it has none."""
    values = [getattr(inp, name) for name in _INPUT_FIELDS]
    cleaned = [clean_text(v) for v in values]
    if cleaned == values:
        return inp
    return ReportInput(**dict(zip(_INPUT_FIELDS, cleaned, strict=True)))


def _store_photos(raws: Sequence[bytes], media_dir: Path, max_bytes: int, max_count: int) -> list[Photo]:
    if len(raws) > max_count:
        raise InvalidInput({"photos": "photo_too_many"})
    try:
        cleaned = [clean_photo(raw, max_bytes) for raw in raws]
    except PhotoRejected as err:
        raise InvalidInput({"photos": err.reason}) from err
    return [
        Photo(filename=store_photo(media_dir, c), width=c.width, height=c.height, size_bytes=len(c.data))
        for c in cleaned
    ]


@dataclass(frozen=True)
class PhotoPolicy:
    media_dir: Path
    max_bytes: int
    max_count: int


@dataclass(frozen=True)
class Prepared:
    """A validated submission whose photos are already cleaned and stored, ready to insert."""

    values: dict[str, object]
    photos: list[Photo]
    media_dir: Path
    client: str = ""  # the rate-limit key (client address) when the submission is limited
    key: str = ""  # the reporter's secret key (only its hash is in ``values``): for the submitter alone

    def discard(self) -> None:
        """Remove the stored photo files (the insert failed)."""
        for photo in self.photos:
            (self.media_dir / photo.filename).unlink(missing_ok=True)


def prepare_report(
    ref: Reference,
    inp: ReportInput,
    photos: Sequence[bytes],
    policy: PhotoPolicy,
    now: datetime,
    source: str = "web",
    client: str = "",
    draft_key: str = "",
    lang: str = "id",
) -> Prepared:
    """Validate (InvalidInput with every problem), clean and store the photos, build the row.
    ``client`` is the key of the submission rate limit (the client address) if one applies;
    ``draft_key`` the idempotency key of an offline draft (well-formed: the caller checked), from which
    the reporter's key is derived (portal.services.reporter_keys); ``lang`` the form's language, the
    one the reporter's notifications are written in."""
    inp = _cleaned(inp)
    if errors := validate(ref, inp):
        raise InvalidInput(errors)
    point = parse_point(inp.lat, inp.lon)
    kec = ref.kecamatan_of(inp.kelurahan)
    assert kec is not None
    stored = _store_photos(photos, policy.media_dir, policy.max_bytes, policy.max_count)
    key, key_hash = reporter_keys.key_from_draft(draft_key) if draft_key else reporter_keys.new_key()
    values: dict[str, object] = {
        "code": new_code(),
        "category": inp.category,
        "agency": None,
        "kecamatan": kec.key,
        "kelurahan": inp.kelurahan,
        "title": inp.title.strip(),
        "description": inp.description.strip(),
        "address": inp.address.strip(),
        "lat": point[0] if point else None,
        "lon": point[1] if point else None,
        "privacy": inp.privacy,
        "contact_name": inp.contact_name.strip(),
        # the number an SMS goes to is kept in E.164 (+62...), the form the provider takes; validate()
        # checked it is an Indonesian mobile number
        "contact_phone": mobile_id(inp.contact_phone)
        if inp.notify_channel == "sms"
        else inp.contact_phone.strip(),
        "contact_email": inp.contact_email.strip(),
        "notify_channel": inp.notify_channel,
        "source": source,
        "status": "submitted",
        "resolution": None,
        "created_at": now,
        "updated_at": now,
        "verify_due": deadlines.verify_due(now),
        "verify_late": False,
        "respond_late": False,
        "secret_hash": key_hash,
        "draft_hash": reporter_keys.draft_hash(draft_key) if draft_key else None,
        # the form's hidden field, else the page's language (the draft path, Open311: Indonesian)
        "lang": lang_or_default(inp.lang if inp.lang in LANGS else lang),
    }
    return Prepared(values, stored, policy.media_dir, client, key)


@dataclass(frozen=True, slots=True)
class NewReport:
    """A report as :func:`insert_reports` stored it: what its answer and its ``created`` event need."""

    id: int
    code: str
    category: str
    agency: str | None
    kecamatan: str
    privacy: str
    status: str
    resolution: str | None
    created_at: datetime
    verify_late: bool
    respond_late: bool


NEW_REPORT_FACTS = [f.name for f in fields(NewReport) if f.name != "id"]  # all taken from Prepared.values


def new_report(report_id: int, prepared: Prepared) -> NewReport:
    """What :func:`store_reports` answers for ``prepared`` once it is stored as ``report_id`` (also
    built by the report writer's web side from the id the writer process sends back)."""
    facts = {name: prepared.values[name] for name in NEW_REPORT_FACTS}
    return NewReport(id=report_id, **cast(dict[str, Any], facts))


def insert_reports(
    db: Session,
    batch: Sequence[Prepared],
    sink: EventSink,
    discard_on_error: bool = True,
    limiter: RateLimiter | None = None,
) -> list[NewReport | None]:
    """:func:`store_reports`, then emit ``created`` for each stored report."""
    stored = store_reports(db, batch, sink, discard_on_error, limiter)
    for report in stored:
        if report is not None:
            emit(sink, "created", report, report.created_at)
    return stored


def store_reports(
    db: Session,
    batch: Sequence[Prepared],
    sink: EventSink,
    discard_on_error: bool = True,
    limiter: RateLimiter | None = None,
) -> list[NewReport | None]:
    """Insert the reports of ``batch`` with their first history entries and photos in ONE transaction,
    with the rows ``sink`` stages for their ``created`` events, and commit (the caller emits the
    events: the report writer does it in the web process); on failure nothing is stored and (unless
    the caller will retry: ``discard_on_error=False``) the batch's photo files are removed. Returns
    what was stored (no reload from the database), None where ``limiter`` refused the submission's
    client (its photo files are removed; the hits are counted in the same transaction as the reports).

    One multi-row INSERT per table as plain DB-API SQL (portal.db.RawInsert), not the ORM unit of work
    nor Core ``execute``: the rows' shape is fixed, and those layers cost more than the rest of the
    request together (docs/performance.md, "Portal").
    """
    refused: list[Prepared] = []
    stored: dict[int, NewReport] = {}
    try:
        with writer(db):
            conn = db.connection()
            if limiter is not None:
                now = max(cast(datetime, p.values["created_at"]) for p in batch)
                allowed = limiter.hit(conn, [p.client for p in batch], now)
                refused = [p for p, ok in zip(batch, allowed, strict=True) if not ok]
                accepted = [p for p, ok in zip(batch, allowed, strict=True) if ok]
            else:
                accepted = list(batch)
            with dbapi_cursor(conn) as cursor:
                returned = raw_insert(REPORTS, conn.dialect, ("id", "code")).execute(
                    cursor, [p.values for p in accepted]
                )
                ids = {code: rid for rid, code in returned}
                for p in accepted:
                    stored[id(p)] = new_report(ids[p.values["code"]], p)
                raw_insert(ENTRIES, conn.dialect).execute(
                    cursor,
                    [
                        {
                            "report_id": stored[id(p)].id,
                            "kind": "created",
                            "at": p.values["created_at"],
                            "actor_label": "pelapor",
                            "body": "",
                        }
                        for p in accepted
                    ],
                )
                raw_insert(PHOTOS, conn.dialect).execute(
                    cursor,
                    [
                        {
                            "report_id": stored[id(p)].id,
                            "filename": photo.filename,
                            "width": photo.width,
                            "height": photo.height,
                            "size_bytes": photo.size_bytes,
                            "created_at": p.values["created_at"],
                        }
                        for p in accepted
                        for photo in p.photos
                    ],
                )
            for p in accepted:
                stage(
                    db, sink, "created", str(p.values["code"]), cast(datetime, p.values["created_at"]), p.key
                )
            db.commit()
    except Exception:
        db.rollback()
        if discard_on_error:
            for p in batch:
                p.discard()
        raise
    for p in refused:
        p.discard()
    return [stored.get(id(p)) for p in batch]


def create_report(
    db: Session,
    ref: Reference,
    inp: ReportInput,
    photos: Sequence[bytes],
    policy: PhotoPolicy,
    sink: EventSink,
    now: datetime,
    source: str = "web",
) -> Report:
    """Validate, store photos, insert the report with its first history entry, commit, emit ``created``.

    The web form goes through :class:`portal.services.report_writer.ReportWriter` instead, which commits
    concurrent submissions together. The reporter's key reaches only the reporter's e-mail, if given
    (the ``created`` notification); Open311 has no field to hand it out."""
    prepared = prepare_report(ref, inp, photos, policy, now, source)
    stored = insert_reports(db, [prepared], sink)[0]
    assert stored is not None  # no limiter: never refused
    return Report(id=stored.id, **prepared.values)


def by_codes(db: Session, codes: Sequence[str]) -> list[Report]:
    """The reports with these tracking codes, in the order of ``codes`` (unknown codes are skipped)."""
    if not codes:
        return []
    found = {r.code: r for r in db.scalars(select(Report).where(Report.code.in_(list(codes))))}
    return [found[c] for c in codes if c in found]


def by_draft_key(db: Session, draft_key: str) -> Report | None:
    """The report made from the offline draft ``draft_key``, if it was stored."""
    digest = reporter_keys.draft_hash(draft_key)
    return db.scalars(select(Report).where(Report.draft_hash == digest)).first()


def get_by_code(db: Session, code: str) -> Report:
    """The report with this tracking code, with its history and photos (NotFound otherwise)."""
    report = db.scalar(
        select(Report)
        .where(Report.code == normalize_code(code))
        .options(selectinload(Report.entries), selectinload(Report.photos), selectinload(Report.duplicate_of))
    )
    if report is None:
        raise NotFound(code)
    return report


def public_list(
    db: Session, category: str = "", kelurahan: str = "", limit: int = 50, offset: int = 0
) -> list[Report]:
    query = select(Report).where(visibility.listed()).options(selectinload(Report.photos))
    if category:
        query = query.where(Report.category == category)
    if kelurahan:
        query = query.where(Report.kelurahan == kelurahan)
    return list(db.scalars(query.order_by(Report.created_at.desc()).limit(limit).offset(offset)))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres (haversine)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def similar(
    db: Session, category: str, kelurahan: str, point: tuple[float, float] | None, limit: int = 5
) -> list[Report]:
    """Open public reports of the same category in the same kelurahan or within about 100 m."""
    near = [Report.kelurahan == kelurahan]
    if point:
        d = 0.0015  # about 165 m in latitude at Binjai: a box around the circle, refined below
        near.append(
            Report.lat.between(point[0] - d, point[0] + d) & Report.lon.between(point[1] - d, point[1] + d)
        )
    rows = db.scalars(
        select(Report)
        .where(visibility.listed(), Report.status.in_(OPEN_STATUSES), Report.category == category, or_(*near))
        .order_by(Report.created_at.desc())
        .limit(50)
    )
    found = [
        r
        for r in rows
        if r.kelurahan == kelurahan
        or (
            point
            and r.lat is not None
            and r.lon is not None
            and distance_m(point, (r.lat, r.lon)) <= SIMILAR_RADIUS_M
        )
    ]
    return found[:limit]


def add_info(
    db: Session, code: str, text: str, photos: Sequence[bytes], policy: PhotoPolicy, now: datetime
) -> Report:
    """The citizen adds information (text and/or photos) to an open report; the original stays as it was."""
    report = get_by_code(db, code)
    if report.status == "closed":
        raise TransitionRefused("err_closed")
    text = clean_text(text)
    if not text.strip() and not photos:
        raise InvalidInput({"body": "err_info_required"})
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput({"body": "err_description_long"})
    room = policy.max_count * 3 - len(report.photos)
    stored = _store_photos(photos, policy.media_dir, policy.max_bytes, min(policy.max_count, max(room, 0)))
    for photo in stored:
        photo.created_at = now
        report.photos.append(photo)
    report.entries.append(ReportEntry(kind="info", at=now, actor_label="pelapor", body=text.strip()))
    report.updated_at = now
    db.commit()
    return report


def stricter_privacies(report: Report) -> tuple[str, ...]:
    """The privacy levels the reporter may still move this report to: only ever stricter (public ->
    anonymous -> confidential), never back, since what was hidden may already have been relied on."""
    return PRIVACIES[PRIVACIES.index(report.privacy) + 1 :] if report.privacy in PRIVACIES else ()


def raise_privacy(db: Session, code: str, privacy: str, now: datetime) -> Report:
    """The reporter hides their name from the agency (``anonymous``) or the whole report from the public
    (``confidential``) after submitting (FixMyStreet #658: "hide your name after the fact"). Takes
    effect everywhere at once: the agency's view, the public list and map, Open311, the wall."""
    report = get_by_code(db, code)
    if privacy not in stricter_privacies(report):
        raise InvalidInput({"privacy": "err_privacy_stricter"})
    report.privacy = privacy
    report.updated_at = now
    report.entries.append(ReportEntry(kind=f"to_{privacy}", at=now, actor_label="pelapor", body=""))
    db.commit()
    return report


def feedback_open(report: Report, now: datetime) -> bool:
    """May the reporter still rate this closure? Closed (not as a duplicate: that report's own page
    carries the verdict), not rated yet (a reopen clears the verdict), within ``FEEDBACK_WINDOW``."""
    return (
        report.status == "closed"
        and report.resolution != "duplicate"
        and report.closed_at is not None
        and now - report.closed_at <= deadlines.FEEDBACK_WINDOW
        and report.feedback is None
    )


def give_feedback(db: Session, code: str, verdict: str, comment: str, now: datetime) -> Report:
    """The reporter says whether the closed report's problem is solved (``FEEDBACKS``), once per
    closure, with an optional comment; kept in the history and counted in the monthly evaluation."""
    report = get_by_code(db, code)
    if verdict not in FEEDBACKS:
        raise InvalidInput({"verdict": "err_verdict"})
    if len(comment) > MAX_DESCRIPTION:
        raise InvalidInput({"comment": "err_description_long"})
    if not feedback_open(report, now):
        raise TransitionRefused("err_feedback_closed")
    report.feedback = verdict
    report.feedback_at = now
    report.entries.append(
        ReportEntry(kind=f"rated_{verdict}", at=now, actor_label="pelapor", body=comment.strip())
    )
    db.commit()
    return report


def reopen(db: Session, ref: Reference, code: str, reason: str, sink: EventSink, now: datetime) -> Report:
    """Reopen a report closed as resolved within 14 days; it goes back to the agency with a new deadline,
    and the agency's officers are told as on a dispatch (in the same transaction)."""
    report = get_by_code(db, code)
    if report.status != "closed" or report.resolution != "resolved_direct":
        raise TransitionRefused("err_not_reopenable")
    if report.closed_at is None or now - report.closed_at > deadlines.REOPEN_WINDOW:
        raise TransitionRefused("err_reopen_window")
    if not reason.strip():
        raise InvalidInput({"reason": "err_reason_required"})
    report.status = "dispatched" if report.agency else "verified"
    report.resolution = None
    report.closed_at = None
    report.responded_at = None
    report.feedback = report.feedback_at = None  # a verdict is on a closure; the history keeps it
    report.dispatched_at = now
    report.respond_due = deadlines.respond_due(now)
    report.updated_at = now
    report.entries.append(
        ReportEntry(kind="reopened", at=now, actor_label="pelapor", body=reason.strip()[:MAX_DESCRIPTION])
    )
    stage(db, sink, "reopened", report.code, now)
    if report.agency:  # back to the agency: a dispatch for its officers (the key names the new time)
        agency_mail.stage_dispatch(db, ref, sink, report)
    db.commit()
    emit(sink, "reopened", report, now)
    return report
