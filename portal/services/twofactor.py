"""The second factor of staff accounts: TOTP (RFC 6238, pyotp) and one-time recovery codes.

Admins and operators must have one (the console switches the room from anywhere). The TOTP secret is
stored on the account (the server needs it to compute codes); a code is accepted for the current
30-second step or one step either side (clock drift), and never twice: the last accepted step is
stored. Recovery codes are 80-bit random values shown once at enrolment; only their SHA-256 is stored
(high-entropy values need no slow hash), and each works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.models import RecoveryCode, User

ROLES_WITH_2FA = frozenset({"admin", "operator"})
ISSUER = "Lapor Binjai"
RECOVERY_CODES = 10
STEP_S = 30


def required(user: User) -> bool:
    return user.role in ROLES_WITH_2FA


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports (typed in, or from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (of now, or one either side) whose code is ``code``; None if none is."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // STEP_S
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def check_candidate(secret: str, code: str, now: datetime) -> int | None:
    """The step of ``code`` for a secret being enrolled (not yet on the account)."""
    return _matching_step(secret, code, now)


def verify_code(db: Session, user: User, code: str, now: datetime) -> bool:
    """True (and the step remembered, committed) if ``code`` is a fresh TOTP code of ``user``."""
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, now)
    if step is None or step <= user.totp_last_step:
        return False
    user.totp_last_step = step
    db.commit()
    return True


def _digest(code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalized.encode()).hexdigest()


def enrol(db: Session, user: User, secret: str, step: int) -> list[str]:
    """Save ``secret`` on the account with fresh recovery codes (old ones deleted); returns the codes,
    which are shown once and never stored in clear."""
    user.totp_secret = secret
    user.totp_last_step = step
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(10)
        codes.append("-".join(raw[i : i + 5] for i in range(0, 20, 5)))
        db.add(RecoveryCode(user_id=user.id, code_hash=_digest(raw)))
    db.commit()
    return codes


def use_recovery_code(db: Session, user: User, code: str, now: datetime) -> bool:
    """True if ``code`` is an unused recovery code of ``user``; it is used up (committed)."""
    found = db.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _digest(code),
            RecoveryCode.used_at.is_(None),
        )
    )
    if found is None:
        return False
    found.used_at = now
    db.commit()
    return True


def recovery_codes_left(db: Session, user: User) -> int:
    rows = db.scalars(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return len(list(rows))


def reset(db: Session, user: User) -> None:
    """Remove the second factor (an admin's reset): the next login enrols a new one."""
    user.totp_secret = None
    user.totp_last_step = 0
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.commit()
