"""Pure ASGI middleware: security headers on every response, the request-body cap, the CSRF cookie.

Pure ASGI (not BaseHTTPMiddleware) so that bodies stream through untouched and the body cap can refuse a
request before anything is buffered: a declared Content-Length over the cap is answered 413 without
reading a byte, and a chunked body is counted as it arrives and cut off at the cap.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "bcc_csrf"
SECURITY_HEADERS = {
    # Every page works without JavaScript; the web app's one script (/static/app.js), its service
    # worker and manifest, photos and styles come from our own origin only, and no inline script runs.
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "manifest-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
    "Cross-Origin-Opener-Policy": "same-origin",
}


_RAW_SECURITY_HEADERS = [
    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()
]


def apply_security_headers(headers: MutableHeaders) -> None:
    """Add each security header the response does not set itself (a route may set its own CSP)."""
    add_security_headers(headers.raw)


def add_security_headers(raw: list[tuple[bytes, bytes]]) -> None:
    """:func:`apply_security_headers` on a raw ASGI header list: one pass over the names, not one
    ``MutableHeaders.setdefault`` scan per header (every response pays this)."""
    present = {name.lower() for name, _ in raw}
    raw.extend(pair for pair in _RAW_SECURITY_HEADERS if pair[0] not in present)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                add_security_headers(raw)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


def refuse(scope: Scope, status: int, text: str) -> Response:
    """An early refusal in the format of the addressed API: Open311's error array or a tiny HTML page."""
    path: str = scope["path"]
    if path.startswith("/open311") and path.endswith(".xml"):
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f"<errors><error><code>{status}</code><description>{text}</description></error></errors>"
        )
        response = Response(body, status, media_type="text/xml; charset=utf-8")
    elif path.startswith("/open311"):
        response = Response(
            json.dumps([{"code": status, "description": text}]),
            status,
            media_type="application/json; charset=utf-8",
        )
    else:
        response = HTMLResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{text}</p>", status
        )
    apply_security_headers(response.headers)
    return response


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, before they are parsed or buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope["query_string"] or "\x00" in scope["path"]:
            # NUL never belongs in text, and PostgreSQL refuses it in text columns: stop it at the door.
            await refuse(scope, 400, "NUL byte in request")(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                response = refuse(scope, 413, "Request body too large")
                response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the route's body parsing: the exception handlers answer 413.
                    raise HTTPException(413, "Request body too large")
            return message

        await self.app(scope, counting_receive, send)


def issued_csrf_cookie(cookies: Mapping[str, str]) -> str | None:
    """The browser's own ``bcc_csrf`` cookie among its parsed ``cookies``, if it is one we could have
    issued."""
    existing = cookies.get(CSRF_COOKIE, "")
    return existing if len(existing) >= 32 else None


class CsrfCookieMiddleware:
    """Give every browser a random ``bcc_csrf`` cookie; forms carry an HMAC of it (portal.web.csrf)."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"cookie":  # parsed as Starlette's Request.cookies does (http.cookies is 10x slower)
                cookies.update(cookie_parser(value.decode("latin-1")))
        token = issued_csrf_cookie(cookies)
        scope.setdefault("state", {})["csrf_cookie"] = token or secrets.token_urlsafe(32)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and token is None:
                value = f"{CSRF_COOKIE}={scope['state']['csrf_cookie']}; Path=/; HttpOnly; SameSite=Lax"
                MutableHeaders(scope=message).append(
                    "set-cookie", value + ("; Secure" if self.secure else "")
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
