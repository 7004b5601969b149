"""InfluxDB over its v1 HTTP API (``/ping``, ``/write``, ``/query``): served by 1.x, by 2.x (v1
compatibility, token auth) and by 3 Core, so one client fits all three. The v2 client gets 404 from
Debian's 1.6.7, which has no ``/api/v2``. Transport errors are converted to our exceptions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from iot_gateway.recorder.config import InfluxSettings


class InfluxError(Exception):
    """Base of InfluxDB errors seen by the recorder."""


class InfluxUnavailable(InfluxError):
    """Connection refused, timeout, or a 5xx: retry later, keep the data."""


class InfluxRejected(InfluxError):
    """A 4xx answer other than 400 (auth, unknown database): keep the data, alert, back off."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


@dataclass(frozen=True)
class WriteResult:
    status: int  # 204 written, 400 some lines bad (the good ones are written), 413 body too large
    error: str = ""


def _error_text(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        return str(body.get("error", "")) if isinstance(body, dict) else response.text
    except orjson.JSONDecodeError:
        return response.text[:500]


class InfluxClient:
    def __init__(
        self, settings: InfluxSettings, password: str | None = None, token: str | None = None
    ) -> None:
        self.settings = settings
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        auth: httpx.BasicAuth | None = None
        if settings.auth == "token" and token:
            headers["Authorization"] = f"Token {token}"
        elif settings.auth == "basic" and settings.username and password is not None:
            auth = httpx.BasicAuth(settings.username, password)
        self._http = httpx.AsyncClient(
            base_url=settings.url, headers=headers, auth=auth, timeout=settings.timeout_s
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:  # connect, read and pool timeouts, refused, reset
            raise InfluxUnavailable(f"{type(err).__name__}: {err}") from err
        if response.status_code >= 500:
            raise InfluxUnavailable(f"HTTP {response.status_code}: {_error_text(response)}")
        return response

    async def ping(self) -> str:
        """The server version (``X-Influxdb-Version``); raises InfluxUnavailable when down."""
        response = await self._request("GET", "/ping")
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    async def write(self, body: bytes, rp: str | None = None) -> WriteResult:
        params = {"db": self.settings.database, "precision": "ns"}
        if rp:
            params["rp"] = rp
        response = await self._request("POST", "/write", params=params, content=body)
        if response.status_code in (200, 204, 400, 413):
            return WriteResult(
                response.status_code, _error_text(response) if response.status_code >= 400 else ""
            )
        raise InfluxRejected(response.status_code, _error_text(response))

    async def query(self, q: str, *, post: bool = False, epoch: str | None = "ns") -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``results`` list. Statement errors raise InfluxRejected (400)."""
        params = {"db": self.settings.database, "q": q}
        if epoch:
            params["epoch"] = epoch
        response = await self._request("POST" if post else "GET", "/query", params=params)
        if response.status_code != 200:
            raise InfluxRejected(response.status_code, _error_text(response))
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxRejected(400, str(result["error"]))
        return results
