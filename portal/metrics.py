"""Prometheus metrics of the portal: every HTTP answer by method, route template and status class, and
the time until its response started (docs/operations.md, "Metrics and alerts").

One ``PortalMetrics`` per app (its own registry, so tests can run several apps in one process). Under
``bcc portal serve --metrics-port`` the values live in prometheus_client's multiprocess files (one set
per worker process, in ``PROMETHEUS_MULTIPROC_DIR``) and the serving process adds them up when it is
scraped (:func:`serve_metrics`); counters of a worker that died stay in its files, so totals never drop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A label value per request path would let anyone grow the series without bound: requests that match
# no route share one value, and methods outside the list another.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# Time to the response's headers: what a citizen waits for. Server-sent events (console, wall) and
# photo downloads end much later; their start is what the portal controls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# prometheus_client's multiprocess values call os.getpid() on every change (to notice a fork), a system
# call, three per request: the whole middleware took 5.6-7.1 us of CPU per request with them and 4.4-5.3
# us without (a submission takes ~600 us). The pid is kept here instead, and updated in a forked child.
_pid = os.getpid()
_files_in_use = False


def _current_pid() -> int:
    return _pid


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def use_multiprocess_files() -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` set: metrics created from now on keep their values in its
    files. Once per process (a second value class would open the same files a second time)."""
    global _files_in_use
    if _files_in_use or not os.environ.get(MULTIPROC_ENV):
        return
    values.ValueClass = values.MultiProcessValue(process_identifier=_current_pid)  # type: ignore[no-untyped-call]
    _files_in_use = True


class PortalMetrics:
    def __init__(self) -> None:
        use_multiprocess_files()  # in a worker process started by `bcc portal serve --metrics-port`
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bcc_portal_http_requests",
            "HTTP requests answered, by method, route template and status class (2xx .. 5xx)",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bcc_portal_http_request_duration_seconds",
            "Time from a request's arrival to its response's headers, by method and route template",
            ["method", "route"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        # (method, route, status class) -> the two children: labels() parses its arguments every call
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "other", route, status // 100)
        children = self._children.get(key)
        if children is None:
            status_class = _CLASSES.get(key[2], "other")
            children = self._children[key] = (
                self.requests.labels(key[0], route, status_class),
                self.latency.labels(key[0], route),
            )
        children[0].inc()
        children[1].observe(seconds)


@dataclass(frozen=True)
class RouteIndex:
    """What labels a request the router did not mark: the paths of routes without parameters (a
    middleware may answer those itself) and the mounts' prefixes (FastAPI 0.165 marks only its own
    routes in the scope, and keeps the routes of included routers to itself: pass those routers' routes)."""

    fixed: frozenset[str]
    mounts: tuple[str, ...]

    @classmethod
    def of(cls, routes: Iterable[BaseRoute]) -> RouteIndex:
        routes = list(routes)
        fixed = frozenset(r.path for r in routes if isinstance(r, Route) and "{" not in r.path)
        return cls(fixed, tuple(r.path for r in routes if isinstance(r, Mount)))

    def template(self, scope: Scope) -> str:
        """The template of the route that answered (``/laporan/{code}``), which the router puts in the
        scope; the path of a fixed route a middleware answered (``/lapor`` of the fast path, a body too
        large for the cap); ``/static/{path}`` for a mount; else :data:`UNMATCHED`."""
        route = scope.get("route")
        if isinstance(route, Route):
            return route.path
        path: str = scope["path"]
        if path in self.fixed:
            return path
        return next((m + "/{path}" for m in self.mounts if path.startswith(m + "/")), UNMATCHED)


class MetricsMiddleware:
    """Counts every HTTP answer, also the early refusals of the body cap and the 500 of an exception
    (Starlette's outermost middleware sends that one, past this one: counted when the exception passes)."""

    def __init__(self, app: ASGIApp, metrics: PortalMetrics, routes: RouteIndex) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def counted(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                self.metrics.observe(
                    scope["method"],
                    self.routes.template(scope),
                    message["status"],
                    time.perf_counter() - started,
                )
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not answered:
                self.metrics.observe(
                    scope["method"],
                    self.routes.template(scope),
                    500,
                    time.perf_counter() - started,
                )
            raise


def prepare_multiprocess(directory: Path) -> None:
    """Before any metric exists: values in files under ``directory`` (emptied: a new start counts from
    zero), for this process and the worker processes it starts (they inherit the environment)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus_client chose its value class when first imported: choose again now that the variable
    # is set (nothing has created a metric in this process yet)
    use_multiprocess_files()


def serve_metrics(host: str, port: int, directory: Path) -> None:
    """``/metrics`` on ``host:port`` in a thread of this process: the sum over every worker's files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)
