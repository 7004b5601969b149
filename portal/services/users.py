"""Staff accounts and server-side sessions: argon2 password hashes (pwdlib), random session tokens.

The session cookie holds a 256-bit random token; the database stores only its SHA-256, so a leaked
database does not leak live sessions. Each session carries its own CSRF token. An account of a role
with a second factor (portal/services/twofactor.py) first gets a short *pending* session that opens
only the second-factor pages; the full session is a new token once the code is checked. Deactivating
an account, an admin's password reset and a password change end the account's (other) sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.models import AGENCY_ROLES, ROLES, StaffSession, User
from portal.reference import Reference
from portal.services.phone import mobile_id

MIN_PASSWORD_LEN = 12
_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")
_hasher = PasswordHash((Argon2Hasher(),))
# Verified when the username is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


PENDING_SESSION = timedelta(minutes=10)  # time to type the second factor after the password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LEN:
        raise InvalidInput({"password": f"at least {MIN_PASSWORD_LEN} characters"})
    if len(password) > 1024:
        raise InvalidInput({"password": "at most 1024 characters"})


def create_user(
    db: Session,
    ref: Reference,
    username: str,
    role: str,
    password: str,
    now: datetime,
    agency: str | None = None,
    display_name: str = "",
) -> User:
    """Create an active account; every problem is reported at once as InvalidInput."""
    errors: dict[str, str] = {}
    if not _USERNAME.match(username):
        errors["username"] = (
            "3-64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter"
        )
    elif db.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = "already exists"
    if role not in ROLES:
        errors["role"] = f"one of {', '.join(ROLES)}"
    if role in AGENCY_ROLES and agency not in ref.agencies:
        errors["agency"] = f"agency officers and heads need one of {', '.join(ref.agencies)}"
    elif role == "kepala_dinas" and (head := head_of(db, agency or "")) is not None:
        errors["agency"] = f"{agency} already has a head (kepala_dinas): {head.username}; deactivate it first"
    if role not in AGENCY_ROLES and agency:
        errors["agency"] = "only agency officers and heads belong to an agency"
    if len(password) < MIN_PASSWORD_LEN:
        errors["password"] = f"at least {MIN_PASSWORD_LEN} characters"
    if errors:
        raise InvalidInput(errors)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        agency=agency,
        active=True,
        created_at=now,
    )
    db.add(user)
    _commit_one_head(db, role, agency)
    return user


def _commit_one_head(db: Session, role: str, agency: str | None) -> None:
    """Commit an account made or made active; when another admin made the agency's head at the same
    moment, the database's one-active-head index refuses it: InvalidInput, as the check before."""
    try:
        db.commit()
    except IntegrityError as err:
        db.rollback()
        if role == "kepala_dinas":
            raise InvalidInput({"agency": f"{agency} already has a head (kepala_dinas)"}) from err
        raise


def head_of(db: Session, agency: str) -> User | None:
    """The agency's active head (role ``kepala_dinas``), if it has one."""
    return db.scalar(select(User).where(User.role == "kepala_dinas", User.agency == agency, User.active))


def authenticate(db: Session, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        _hasher.verify(password, _DUMMY_HASH)
        return None
    valid, new_hash = _hasher.verify_and_update(password, user.password_hash)
    if not valid:
        return None
    if new_hash:
        user.password_hash = new_hash
        db.commit()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    db: Session, user: User, now: datetime, hours: float, pending_2fa: bool = False
) -> tuple[str, StaffSession]:
    """A new session for ``user``; returns the cookie token (shown once) and the stored session.
    A ``pending_2fa`` session lasts :data:`PENDING_SESSION` and opens only the second-factor pages."""
    db.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    life = PENDING_SESSION if pending_2fa else timedelta(hours=hours)
    session = StaffSession(
        token_hash=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + life,
        pending_2fa=pending_2fa,
    )
    db.add(session)
    db.commit()
    return token, session


def load_session(db: Session, token: str, now: datetime) -> StaffSession | None:
    if not token:
        return None
    session = db.get(StaffSession, _digest(token))
    if session is None or session.expires_at < now or not session.user.active:
        return None
    return session


def end_session(db: Session, token: str) -> None:
    db.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))
    db.commit()


def token_hash(token: str) -> str:
    return _digest(token)


def end_user_sessions(db: Session, user: User, keep_token: str = "") -> None:
    """End every session of ``user`` but the one whose cookie token is ``keep_token`` (committed)."""
    query = delete(StaffSession).where(StaffSession.user_id == user.id)
    if keep_token:
        query = query.where(StaffSession.token_hash != _digest(keep_token))
    db.execute(query)
    db.commit()


def find_user(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise InvalidInput({"username": "no such account"})
    return user


def list_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.username)))


def set_active(db: Session, user: User, active: bool) -> None:
    """Deactivate (its sessions end: it can no longer log in or act) or reactivate an account. An
    agency's head is reactivated only while the agency has no other active head."""
    if active and not user.active and user.role == "kepala_dinas":
        head = head_of(db, user.agency or "")
        if head is not None and head.id != user.id:
            raise InvalidInput(
                {"agency": f"{user.agency} already has a head (kepala_dinas): {head.username}"}
            )
    role, agency = user.role, user.agency
    user.active = active
    if not active:
        db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    _commit_one_head(db, role, agency)


def reset_password(db: Session, user: User, password: str, now: datetime) -> None:
    """An admin sets a new password (handed over out of band); every session of the account ends."""
    _check_password(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    db.commit()


def change_own_password(
    db: Session, user: User, current: str, new: str, repeat: str, now: datetime, keep_token: str
) -> None:
    """The user changes their own password (the current one is required); their other sessions end."""
    if not _hasher.verify(current[:1024], user.password_hash):
        raise InvalidInput({"current": "pw_wrong_current"})
    if new != repeat:
        raise InvalidInput({"repeat": "pw_mismatch"})
    try:
        _check_password(new)
    except InvalidInput as err:
        raise InvalidInput({"password": "pw_too_short"}) from err
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    db.commit()
    end_user_sessions(db, user, keep_token)


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
NOTIFY_LANGS = ("id", "en")


def set_contact(db: Session, user: User, email: str, lang: str, phone: str | None = None) -> None:
    """Where and in which language the account gets alarm e-mails (docs/alarms.md, "Notifications");
    an empty ``email`` stops them. ``phone``: an Indonesian mobile number for alarm SMS, kept as
    +62...; "" removes it, None leaves it as it is."""
    email = email.strip()
    errors: dict[str, str] = {}
    number = mobile_id(phone) if phone else None
    if phone and number is None:
        errors["phone"] = "an Indonesian mobile number (08..., +62 8...)"
    if email and (len(email) > 200 or not _EMAIL.match(email)):
        errors["email"] = "an e-mail address (name@domain), at most 200 characters"
    if lang not in NOTIFY_LANGS:
        errors["lang"] = f"one of {', '.join(NOTIFY_LANGS)}"
    if errors:
        raise InvalidInput(errors)
    user.email = email or None
    user.lang = lang
    if phone is not None:
        user.phone = number
    db.commit()
