"""A local fake of Twilio's Messages API (the one SMS provider adapter, portal/services/sms.py): a real HTTP
server on a free loopback port, in a thread, that checks each request the way Twilio does (path with
the Account SID, HTTP basic auth, a form-encoded ``To`` in E.164, ``Body``, ``From`` or
``MessagingServiceSid``) and answers as Twilio answers: 201 with the message resource, or its error
JSON. ``mode`` makes it misbehave: "down" (503), "slow" (hangs ``delay_s``, then 504: a provider that
hangs and fails), "ratelimit" (429), "nosid" (takes the message, then answers 201 with a body that is not
JSON, as a proxy or a provider hiccup might). ``in_flight``: requests being answered now.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from bcc_common.gsm7 import SMS_SEPTETS, septets
from bcc_common.net import free_port
from portal.services.sms import SmsSettings

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "fake-auth-token-for-tests-only"
SENDER = "+15005550006"
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


@dataclass(frozen=True)
class Received:
    to: str
    body: str
    sender: str
    sid: str


class FakeTwilio:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Received] = []
        self.requests = 0  # every request, answered or not
        self.in_flight = 0
        self.mode = "up"
        self.delay_s = 0.0
        self.refused_numbers: set[str] = set()  # answered 400 code 21211, like a number Twilio rejects
        self.arrived = threading.Condition()
        self._sids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: object) -> SmsSettings:
        values: dict[str, object] = {
            "account": ACCOUNT,
            "token": TOKEN,
            "sender": SENDER,
            "base_url": self.url,
        }
        values.update(overrides)
        return SmsSettings(**values)  # type: ignore[arg-type]

    def wait(self, count: int, timeout: float = 15.0) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
            return list(self.messages)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def _answer(self, status: int, body: dict[str, object]) -> None:
                self._raw(status, json.dumps(body).encode())

            def _raw(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: int, message: str) -> None:
                info = f"https://www.twilio.com/docs/errors/{code}"
                self._answer(status, {"code": code, "message": message, "more_info": info, "status": status})

            def do_POST(self) -> None:
                with fake.arrived:
                    fake.requests += 1
                    fake.in_flight += 1
                try:
                    self._post()
                finally:
                    with fake.arrived:
                        fake.in_flight -= 1

            def _post(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if fake.mode == "slow":
                    time.sleep(fake.delay_s)
                    return self._error(504, 20504, "Gateway Timeout")
                if fake.mode == "down":
                    return self._error(503, 20503, "Service Unavailable")
                if fake.mode == "ratelimit":
                    return self._error(429, 20429, "Too Many Requests")
                if self.path != f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
                    return self._error(404, 20404, "The requested resource was not found")
                expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._error(401, 20003, "Authenticate")
                if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
                    return self._error(400, 20001, "Unsupported content type")
                form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                to, body = form.get("To", ""), form.get("Body", "")
                sender = form.get("From") or form.get("MessagingServiceSid", "")
                if not sender:
                    return self._error(400, 21603, "The 'From' number is required.")
                if not body:
                    return self._error(400, 21602, "Message body is required.")
                if not _E164.match(to) or to in fake.refused_numbers:
                    return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
                try:  # our texts are one SMS: a longer or non-GSM text would cost several
                    if septets(body) > SMS_SEPTETS:
                        return self._error(400, 99001, "test: more than one SMS segment")
                except ValueError:
                    return self._error(400, 99002, "test: not GSM-7 (would go as UCS-2)")
                sid = f"SM{next(fake._sids):032x}"
                with fake.arrived:
                    fake.messages.append(Received(to, body, sender, sid))
                    fake.arrived.notify_all()
                if fake.mode == "nosid":
                    return self._raw(201, b"<html>queued</html>")
                self._answer(
                    201, {"sid": sid, "status": "queued", "to": to, "body": body, "num_segments": "1"}
                )
                return None

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
