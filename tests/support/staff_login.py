"""Staff logins in tests: enrol a TOTP second factor and compute the code for the app's clock.

The codes are real (pyotp from the enrolled secret); only the clock may be the tests' fake one. A code
is accepted once per 30-second step (one step either side of now is allowed), so the helper picks the
earliest acceptable step the account has not used yet. The step before now is offered only in the first
20 seconds of the current step: on the real clock a slow machine may reach the next step before the
portal checks the code, and then the step before is out of the window (seen in CI under load).
"""

from __future__ import annotations

import pyotp
from fastapi import FastAPI
from sqlalchemy import select

from portal.models import User
from portal.runtime import runtime_of
from portal.services import twofactor


def enrol_totp(app: FastAPI, username: str) -> str:
    """Give ``username`` a second factor (as the enrolment page would); returns the secret."""
    secret = pyotp.random_base32()
    with runtime_of(app).sessions() as db:
        user = db.scalars(select(User).where(User.username == username)).one()
        twofactor.enrol(db, user, secret, step=0)
    return secret


def totp_code(app: FastAPI, username: str, secret: str) -> str:
    """A code the portal accepts now for ``username`` (not a step it already accepted)."""
    runtime = runtime_of(app)
    now = runtime.clock().timestamp()
    step = int(now) // twofactor.STEP_S
    earliest = step - 1 if now - step * twofactor.STEP_S < 20 else step
    with runtime.sessions() as db:
        last = db.scalars(select(User.totp_last_step).where(User.username == username)).one()
    fresh = [s for s in range(earliest, step + 2) if s > last]
    assert fresh, "every acceptable TOTP step of this account is used: advance the clock 30 s"
    return pyotp.TOTP(secret).generate_otp(fresh[0])
