"""SMS behind an interface: :class:`SmsProvider` (``send(to, text)``: the provider's message id, or
:class:`SmsError` saying whether trying again later can help), and one real adapter, :class:`TwilioSms`,
over Twilio's Programmable Messaging REST API (docs/portal.md, "Notification channels").

The outbox (portal/services/notify.py) is the only caller: it retries a transient failure with backoff
and gives a permanent one up at once. Phone numbers arrive normalised (``+62...``,
portal.services.phone.mobile_id).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from bcc_common.secrets import SecretFileError, read_secret

log = logging.getLogger(__name__)


class SmsError(Exception):
    """A message the provider did not take. ``permanent``: sending the same again cannot succeed (a
    refused number, bad credentials); otherwise (down, slow, rate-limited) a later try may."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmsProvider(Protocol):
    def send(self, to: str, text: str) -> str:
        """Hand one SMS to the provider: its id for the message ("" when it took the message without
        saying its id), or SmsError."""
        ...


@dataclass(frozen=True)
class SmsSettings:
    """``BCC_PORTAL_SMS_PROVIDER`` (``twilio``; unset: no SMS), ``BCC_PORTAL_SMS_URL`` (the API's base
    URL), ``BCC_PORTAL_SMS_ACCOUNT`` (the Account SID), ``BCC_PORTAL_SMS_TOKEN`` or
    ``BCC_PORTAL_SMS_TOKEN_FILE`` (the Auth Token), ``BCC_PORTAL_SMS_FROM`` (the sender: a number in
    E.164 or a Messaging Service SID ``MG...``), ``BCC_PORTAL_SMS_TIMEOUT_S``."""

    account: str
    token: str
    sender: str
    base_url: str = "https://api.twilio.com"
    timeout_s: float = 10.0
    attempts: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmsSettings | None:
        provider = env.get("BCC_PORTAL_SMS_PROVIDER", "")
        if not provider:
            return None
        if provider != "twilio":
            raise ValueError(f"BCC_PORTAL_SMS_PROVIDER={provider!r}: the one provider is 'twilio'")
        try:
            token = read_secret(env, "BCC_PORTAL_SMS_TOKEN")
        except SecretFileError as err:
            raise ValueError(str(err)) from err
        missing = [
            name
            for name, value in (
                ("BCC_PORTAL_SMS_ACCOUNT", env.get("BCC_PORTAL_SMS_ACCOUNT")),
                ("BCC_PORTAL_SMS_TOKEN (or _FILE)", token),
                ("BCC_PORTAL_SMS_FROM", env.get("BCC_PORTAL_SMS_FROM")),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"SMS provider 'twilio' needs {', '.join(missing)}")
        assert token is not None
        return cls(
            account=env["BCC_PORTAL_SMS_ACCOUNT"],
            token=token,
            sender=env["BCC_PORTAL_SMS_FROM"],
            base_url=env.get("BCC_PORTAL_SMS_URL") or cls.base_url,
            timeout_s=float(env.get("BCC_PORTAL_SMS_TIMEOUT_S", "10")),
        )


class TwilioSms:
    """Twilio's Messages resource: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json``,
    HTTP basic authentication with the Account SID and Auth Token, form-encoded ``To``, ``Body`` and
    ``From`` (or ``MessagingServiceSid`` for a sender ``MG...``). 201 answers the message resource, whose
    ``sid`` (``SM...``) is the id; an error answers ``{"code", "message", "status"}``. A 2xx answer
    whose body has no readable ``sid`` still means Twilio took the message: it counts as sent (a
    warning is logged), never retried, which would send the SMS twice.

    Transient: no answer (connection refused, timeout), 429 and 5xx. Permanent: any other 4xx (an
    invalid or unreachable number, 21211/21614; bad credentials, 20003), which no retry can change."""

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        base = settings.base_url.rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{settings.account}/Messages.json"
        self._client = httpx.Client(
            auth=(settings.account, settings.token), timeout=settings.timeout_s, follow_redirects=False
        )

    def send(self, to: str, text: str) -> str:
        sender = self.settings.sender
        form = {"To": to, "Body": text}
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        try:
            response = self._client.post(self.url, data=form)
        except httpx.HTTPError as err:
            raise SmsError(f"{type(err).__name__}: {err}", permanent=False) from err
        if response.status_code in (200, 201):
            try:
                return str(response.json()["sid"])
            except (ValueError, KeyError, TypeError):
                # The provider took the message: a retry would send it twice. Sent, without its id.
                log.warning(
                    "SMS provider answered HTTP %d without a message sid: counted as sent",
                    response.status_code,
                )
                return ""
        status = response.status_code
        raise SmsError(
            f"HTTP {status}: {_error_text(response)}", permanent=400 <= status < 500 and status != 429
        )

    def close(self) -> None:
        self._client.close()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('code')} {body.get('message')}"
    except (ValueError, AttributeError):
        return response.text[:200]
