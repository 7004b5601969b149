"""The video wall (``/dinding``): its layout data, the report views it shows, and the kiosk tokens.

Privacy: every query here selects only category, kelurahan, status and times, and never a report whose
privacy is ``confidential`` (not even as a count: a count of one in a small kelurahan would show that a
confidential report exists there). Names, contacts, titles, descriptions and addresses are never read.

Kiosk tokens (for the wall's own browser, which has no staff login) need no database table: a token is
``<id>.<hmac>`` where the HMAC-SHA256 of the id is keyed with the portal's secret key; the registry of
issued ids (label, creator, created, revoked) is a small JSON file, ``<media_dir>/wall_kiosk.json``
(the photo route serves only random ``*.jpg`` names, never this file). A token is accepted only if its
HMAC matches *and* its id is in the registry and not revoked, so losing the file revokes every token
(fail closed) and the file alone never gives a usable token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.i18n import translate, translate_n
from portal.models import OPEN_STATUSES, Report
from portal.reference import Lang, Reference
from portal.services.deadlines import WIB
from portal.services.visibility import not_confidential

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "wall_layouts.yaml"
# The presets of the wall controller (devices/profiles/videowall7.yaml, point ``layout``).
LAYOUTS = ("wide", "split_2", "split_3", "split_4", "split_7")
VIEWS = ("feed", "map", "counts", "deadlines", "room", "clock")
DISPLAYS = 7
# The wall's texts are messages of portal/locale: wall_status_<status> (shorter than the pages' status
# names), weekday_<0..6> (Monday first), month_long_<1..12>.


class WallError(ValueError):
    """The wall layout file is not usable; the message names every problem."""


class Region(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    width: float = Field(gt=0, le=DISPLAYS)
    views: tuple[str, ...] = ()


class WallConfig(BaseModel):
    """``wall_layouts.yaml``, validated (see the file for the rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stale_after_s: float = Field(default=60.0, gt=0)
    refresh_s: float = Field(default=5.0, gt=0)
    feed_limit: int = Field(default=12, ge=1, le=50)
    layouts: dict[str, tuple[Region, ...]]

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> WallConfig:
        # the problems in the admin's language when the layout editor saves (context ``lang``), else in
        # English (the file read at start, for the log)
        lang: Lang = (info.context or {}).get("lang", "en")
        problems: list[tuple[str, dict[str, object]]] = []
        for name in LAYOUTS:
            if name not in self.layouts:
                problems.append(("wall_err_missing", {"name": name}))
        for name, regions in self.layouts.items():
            if name not in LAYOUTS:
                problems.append(("wall_err_not_preset", {"name": name, "presets": ", ".join(LAYOUTS)}))
                continue
            if name.startswith("split_") and len(regions) != int(name[6:]):
                problems.append(("wall_err_regions", {"name": name, "n": len(regions), "want": name[6:]}))
            if not regions:
                problems.append(("wall_err_no_region", {"name": name}))
            total = sum(r.width for r in regions)
            if regions and abs(total - DISPLAYS) > 0.05:
                problems.append(
                    ("wall_err_widths", {"name": name, "total": f"{total:g}", "displays": DISPLAYS})
                )
            seen: set[str] = set()
            for region in regions:
                for view in region.views:
                    if view not in VIEWS:
                        fields: dict[str, object] = {
                            "name": name,
                            "view": repr(view),
                            "views": ", ".join(VIEWS),
                        }
                        problems.append(("wall_err_unknown_view", fields))
                    elif view in seen:
                        problems.append(("wall_err_view_twice", {"name": name, "view": view}))
                    seen.add(view)
        if problems:
            raise ValueError("; ".join(translate(key, lang, **fields) for key, fields in problems))
        return self

    def as_json(self) -> dict[str, Any]:
        return {name: [r.model_dump(mode="json") for r in regions] for name, regions in self.layouts.items()}


def load_wall(path: Path | str = DEFAULT_FILE) -> WallConfig:
    """Read and validate the wall layout file (at portal start-up); :class:`WallError` names the problems."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return WallConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as err:
        raise WallError(f"{path}: {err}") from err
    except ValidationError as err:
        msgs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in err.errors())
        raise WallError(f"{path}: {msgs}") from err


def override_path(media_dir: Path) -> Path:
    """Where ``/dinding/admin`` stores the admins' assignment (JSON, same schema as the YAML file)."""
    return media_dir / "wall_layouts.json"


def load_effective(default: WallConfig, media_dir: Path) -> WallConfig:
    """The admins' saved assignment if there is one (validated like the file), else ``default``."""
    path = override_path(media_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as err:
        raise WallError(f"{path}: {err}") from err
    try:
        return WallConfig.model_validate({**default.model_dump(exclude={"layouts"}), "layouts": raw})
    except ValidationError as err:
        msgs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in err.errors())
        raise WallError(f"{path}: {msgs}") from err


def save_layouts(
    config: WallConfig, layouts: dict[str, Any], media_dir: Path, lang: Lang = "en"
) -> WallConfig:
    """Validate an edited assignment and store it atomically; :class:`WallError` names the problems, in
    ``lang`` (a value that is not a number, or out of range, is named by its place in the form)."""
    try:
        checked = WallConfig.model_validate(
            {**config.model_dump(exclude={"layouts"}), "layouts": layouts}, context={"lang": lang}
        )
    except ValidationError as err:
        raise WallError("; ".join(_problem(e, lang) for e in err.errors())) from err
    path = override_path(media_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".wall_layouts.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(checked.as_json(), f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return checked


def _problem(error: Any, lang: Lang) -> str:
    if error["type"] == "value_error":  # our own check's, already in ``lang``
        return str(error["msg"]).removeprefix("Value error, ")
    where = " ".join(str(part) for part in error["loc"][1:])  # layouts split_2 0 width -> split_2 0 width
    return translate("wall_err_value", lang, where=where or "layouts")


def current_layout(room_states: dict[str, dict[str, Any]], device: str) -> str:
    """The preset of wall controller ``device`` from its retained state; ``wide`` until it is known."""
    value = room_states.get(device, {}).get("layout")
    return value if isinstance(value, str) and value in LAYOUTS else "wide"


# ---- texts ---------------------------------------------------------------------------------------
def tanggal(now: datetime, lang: Lang = "id") -> str:
    """``Sabtu, 28 November 2026`` (``Saturday, 28 November 2026``) in WIB."""
    local = now.astimezone(WIB)
    return translate(
        "wall_date",
        lang,
        weekday=translate(f"weekday_{local.weekday()}", lang),
        day=local.day,
        month=translate(f"month_long_{local.month}", lang),
        year=local.year,
    )


def jam(now: datetime) -> str:
    return now.astimezone(WIB).strftime("%H.%M") + " WIB"


def umur(seconds: float, lang: Lang = "id") -> str:
    """A report's age, short: ``baru saja``, ``12 menit``, ``3 jam``, ``2 hari`` (``just now``...)."""
    if seconds < 60:
        return translate("wall_just_now", lang)
    if seconds < 3600:
        return translate_n("wall_minutes", "wall_minutes_plural", int(seconds // 60), lang)
    if seconds < 86400:
        return translate_n("wall_hours", "wall_hours_plural", int(seconds // 3600), lang)
    return translate_n("wall_days", "wall_days_plural", int(seconds // 86400), lang)


# ---- report views --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedItem:
    category: str
    kelurahan: str
    kecamatan: str
    age: str
    status: str
    status_key: str


@dataclass(frozen=True)
class AtRisk:
    kind: str  # the step at risk, by name: verifikasi | tanggapan
    category: str
    kelurahan: str
    late: bool
    text: str


@dataclass(frozen=True)
class ReportViews:
    feed: list[FeedItem]
    # kecamatan name -> [(kelurahan name, open count)]
    map: list[tuple[str, list[tuple[str, int]]]]
    map_max: int
    counts: list[tuple[str, int, int]]  # category name, today, this week
    counts_total: tuple[int, int]
    at_risk: list[AtRisk]
    late_total: int
    due_today_total: int


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(WIB).date(), time(), WIB).astimezone(UTC)


def _week_start(now: datetime) -> datetime:
    local: date = now.astimezone(WIB).date()
    return datetime.combine(local - timedelta(days=local.weekday()), time(), WIB).astimezone(UTC)


def report_views(
    db: Session, ref: Reference, now: datetime, feed_limit: int = 12, lang: Lang = "id"
) -> ReportViews:
    """Everything the report views show, from explicit columns only (never a name, contact or text)."""
    cat_name = {k: c.name.get(lang) for k, c in ref.categories.items()}
    rows = db.execute(
        select(Report.category, Report.kelurahan, Report.kecamatan, Report.created_at, Report.status)
        .where(not_confidential())
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(feed_limit)
    ).all()
    feed = [
        FeedItem(
            category=cat_name.get(r.category, r.category),
            kelurahan=ref.kelurahan_name(r.kelurahan),
            kecamatan=ref.kecamatan[r.kecamatan].name if r.kecamatan in ref.kecamatan else r.kecamatan,
            age=umur(max(0.0, (now - r.created_at).total_seconds()), lang),
            status=translate(f"wall_status_{r.status}", lang),
            status_key=r.status,
        )
        for r in rows
    ]

    open_by_kel = dict(
        db.execute(
            select(Report.kelurahan, func.count())
            .where(not_confidential(), Report.status.in_(OPEN_STATUSES))
            .group_by(Report.kelurahan)
        ).all()
    )
    grid = [
        (kec.name, [(name, int(open_by_kel.get(key, 0))) for key, name in kec.kelurahan.items()])
        for kec in ref.kecamatan.values()
    ]

    day, week = _day_start(now), _week_start(now)
    counted: dict[str, list[int]] = {}
    for category, created in db.execute(
        select(Report.category, Report.created_at).where(
            not_confidential(), Report.created_at >= min(day, week), Report.created_at <= now
        )
    ):
        slot = counted.setdefault(category, [0, 0])
        slot[0] += created >= day
        slot[1] += created >= week
    counts = sorted(
        ((cat_name.get(c, c), t, w) for c, (t, w) in counted.items()), key=lambda x: (-x[2], x[0])
    )

    end_of_today = _day_start(now) + timedelta(days=1)
    risk: list[AtRisk] = []
    for kind, due_col, status in (
        ("verifikasi", Report.verify_due, "submitted"),
        ("tanggapan", Report.respond_due, "dispatched"),
    ):
        for category, kelurahan, due in db.execute(
            select(Report.category, Report.kelurahan, due_col)
            .where(not_confidential(), Report.status == status, due_col.is_not(None), due_col < end_of_today)
            .order_by(due_col)
        ):
            if due is None:
                continue
            late = due < now
            text = (
                translate("wall_late", lang, age=umur((now - due).total_seconds(), lang))
                if late
                else translate("wall_due_today", lang)
            )
            risk.append(
                AtRisk(
                    translate(f"wall_kind_{kind}", lang),
                    cat_name.get(category, category),
                    ref.kelurahan_name(kelurahan),
                    late,
                    text,
                )
            )
    risk.sort(key=lambda a: (not a.late, a.kind))
    return ReportViews(
        feed=feed,
        map=grid,
        map_max=max(open_by_kel.values(), default=0),
        counts=counts,
        counts_total=(sum(c[1] for c in counts), sum(c[2] for c in counts)),
        at_risk=risk[:10],
        late_total=sum(a.late for a in risk),
        due_today_total=sum(not a.late for a in risk),
    )


# ---- kiosk tokens --------------------------------------------------------------------------------
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
_SIG_LEN = 32


@dataclass(frozen=True)
class KioskToken:
    id: str
    label: str
    created_at: str
    created_by: str
    revoked_at: str | None = None


class KioskStore:
    """Issued kiosk tokens in ``<media_dir>/wall_kiosk.json``; the token text itself is never stored."""

    def __init__(self, path: Path, secret: str) -> None:
        self.path = path
        self._key = secret.encode()
        self._lock = threading.Lock()

    def _sign(self, token_id: str) -> str:
        return hmac.new(self._key, b"bcc-wall-kiosk:" + token_id.encode(), hashlib.sha256).hexdigest()[
            :_SIG_LEN
        ]

    def _read(self) -> list[KioskToken]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [KioskToken(**t) for t in raw.get("tokens", [])]

    def _write(self, tokens: list[KioskToken]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"tokens": [t.__dict__ for t in tokens]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".wall_kiosk.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def tokens(self) -> list[KioskToken]:
        return self._read()

    def issue(self, label: str, created_by: str, now: datetime) -> str:
        """A new token (shown once to the admin); only its id is recorded."""
        token_id = secrets.token_urlsafe(12)
        with self._lock:
            tokens = self._read()
            tokens.append(KioskToken(token_id, label.strip()[:80], now.isoformat(), created_by))
            self._write(tokens)
        return f"{token_id}.{self._sign(token_id)}"

    def revoke(self, token_id: str, now: datetime) -> bool:
        with self._lock:
            tokens = self._read()
            found = False
            for i, t in enumerate(tokens):
                if t.id == token_id and t.revoked_at is None:
                    tokens[i] = KioskToken(t.id, t.label, t.created_at, t.created_by, now.isoformat())
                    found = True
            if found:
                self._write(tokens)
        return found

    def check(self, token: str) -> KioskToken | None:
        """The token's registry entry if it is genuine and not revoked, else None."""
        token_id, _, sig = token.partition(".")
        if not _ID_RE.match(token_id) or not hmac.compare_digest(sig.encode(), self._sign(token_id).encode()):
            return None
        try:
            tokens = self._read()
        except (OSError, ValueError, TypeError):
            return None
        return next((t for t in tokens if t.id == token_id and t.revoked_at is None), None)
