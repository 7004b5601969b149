"""Exception handlers: HTML error pages in the user's language, Open311's error array under /open311."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response

from portal.web.deps import LoginRequired, lang_of, render
from portal.web.middleware import apply_security_headers
from portal.web.open311_format import Open311Error, error_response

log = structlog.get_logger(__name__)


def _fmt(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


def _page(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    if request.url.path.startswith("/open311"):
        text = {403: "Forbidden", 404: "Not found", 413: "Request body too large", 429: "Too many requests"}
        return error_response(
            _fmt(request),
            status if status in (403, 404) else 400 if status < 500 else status,
            text.get(status, "Bad request" if status < 500 else "Server error"),
        )
    key = f"error_{status}" if status in (400, 403, 404, 413, 429, 500) else "error_400"
    try:
        response = render(
            request, lang_of(request), "error.html", {"status": status, "message_key": key}, status
        )
    except Exception:  # never fail while reporting a failure
        response = Response(f"Error {status}", status, media_type="text/plain; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _page(request, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/open311"):
            fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
            return error_response(_fmt(request), 400, f"Invalid parameters: {fields}")
        return _page(request, 400)

    @app.exception_handler(Open311Error)
    async def open311_error(request: Request, exc: Open311Error) -> Response:
        return error_response(_fmt(request), exc.status, exc.description)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/staf/masuk?next={request.url.path}", status_code=303)
        return _page(request, 401)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Runs in Starlette's outermost middleware, outside SecurityHeadersMiddleware: add them here.
        log.error("portal_unhandled_error", path=request.url.path, error=repr(exc))
        response = _page(request, 500)
        apply_security_headers(MutableHeaders(raw=response.raw_headers))
        return response
