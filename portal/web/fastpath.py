"""The report form's common case, answered without the framework's routing layers.

Almost every citizen submission is the same request: ``POST /lapor``, a urlencoded form (no photos),
from a browser that holds its ``bcc_csrf`` cookie and no staff session. For that request this ASGI
middleware calls the route's own code (``portal.web.submission``: form parsing, CSRF check, validation,
the group-commit writer, the redirect) directly, instead of through FastAPI's exception, exit-stack and
routing middleware and its request handler, which cost a quarter of a submission's time in the web
process (docs/performance.md, "Portal"). What it answers is what the route answers: the same functions
build the same response, and tests compare the two paths (tests/portal/web/test_fastpath.py).

Anything else goes to the framework untouched: other paths and methods, multipart bodies (photos),
bodies without a Content-Length, staff sessions. A request the route refuses with an HTTP error
(wrong CSRF token, NUL bytes, the rate limit) is handed to the framework with its body replayed, so the
error page is rendered by the same exception handlers as always; those refusals have no side effects.
It sits inside the body cap and Starlette's server-error middleware (an unexpected exception still
becomes the portal's 500 page) but outside the security-header and CSRF-cookie middleware, whose work
it does itself for its answers (it only takes browsers that already hold the cookie): two layers fewer
for every submission. Everything it hands on passes through both as usual.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.runtime import PortalRuntime
from portal.web import submission
from portal.web.deps import SESSION_COOKIE, URLENCODED, read_form, verify_csrf
from portal.web.middleware import add_security_headers, issued_csrf_cookie


class ReportFastPath:
    def __init__(self, app: ASGIApp, runtime: PortalRuntime) -> None:
        self.app = app
        self.runtime = runtime  # given once by create_app: nothing looked up per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/lapor"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        headers, cookies = request.headers, request.cookies  # parsed once, kept by the Request
        cookie = issued_csrf_cookie(cookies)
        if (
            cookie is None
            or headers.get("content-type", "").partition(";")[0].strip().lower() != URLENCODED
            or "content-length" not in headers
            or SESSION_COOKIE in cookies
        ):
            await self.app(scope, receive, send)
            return
        # what CsrfCookieMiddleware would record: the browser keeps its cookie, nothing to set
        scope.setdefault("state", {})["csrf_cookie"] = cookie
        body = await request.body()  # at most the cap: BodyLimitMiddleware checked Content-Length
        form = await read_form(request)  # parses the body just read (Request caches it)
        try:
            await verify_csrf(request, form)
            response = await submission.submit_form(self.runtime, request, form)
        except HTTPException:
            await self.app(scope, _replay(body, receive), send)
            return
        add_security_headers(response.raw_headers)  # what SecurityHeadersMiddleware adds
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again, then whatever the client sends next (a disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
