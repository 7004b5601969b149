"""``bcc portal serve|migrate``: run the citizen portal with uvicorn, or apply its migrations."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from portal.config import Settings, SettingsError
from portal.db import UnknownRevision, make_engine, upgrade


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

    With ``--workers`` uvicorn binds the listening socket itself as ``socket.socket(family)``, whose
    ``proto`` is 0, so asyncio does not set TCP_NODELAY on accepted connections; a response written
    as headers + body then waits for the client's delayed ACK: every request took 44 ms (measured:
    180 requests/s on 8 connections). One worker is not affected; setting it always is harmless."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="portal_command", required=True)
    serve = sub.add_parser(
        "serve", help="migrate the database, then serve the portal (settings from BCC_PORTAL_*)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* from the TLS proxy")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (use PostgreSQL; rate limits and schedules are shared through it)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="no per-request log line (when the TLS proxy in front already logs requests)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics (all workers added up) on this port; none by default",
    )
    serve.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of /metrics (default 127.0.0.1: not public)"
    )
    sub.add_parser("migrate", help="apply the database migrations and exit")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except UnknownRevision as err:
        print(f"bcc portal: {err}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.portal_command == "migrate":
        return 0
    from portal.accesslog import log_config
    from portal.main import create_app
    from portal.services.notify import SmtpSettings
    from portal.services.sms import SmsSettings

    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if settings.mqtt is not None and args.workers > settings.mqtt.accounts:
        print(
            f"--workers {args.workers}: each worker needs its own MQTT account and there are "
            f"{settings.mqtt.accounts} (BCC_PORTAL_MQTT_ACCOUNTS; the broker's `--accounts portal=N`)",
            file=sys.stderr,
        )
        return 2
    try:
        sms = SmsSettings.from_env(os.environ)
    except ValueError as err:  # an SMS provider named without its account, token or sender
        print(f"bcc portal: {err}", file=sys.stderr)
        return 2
    if args.metrics_port is not None and (code := _start_metrics(args)) != 0:
        return code
    # one worker: the app built here; several: each worker process builds its own from the environment
    app = create_app(settings, smtp=SmtpSettings.from_env(os.environ), sms=sms) if args.workers == 1 else None
    uvicorn.run(
        app or "portal.main:app_from_env",
        factory=app is None,
        workers=args.workers,
        http=NoDelayH11Protocol,
        host=args.host,
        port=args.port,
        proxy_headers=args.proxy_headers,
        server_header=False,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        log_config=log_config(),  # the access log masks reporter keys
    )
    return 0


def _start_metrics(args: argparse.Namespace) -> int:
    """``/metrics`` in this (uvicorn's main) process over the files every worker writes its counts to:
    in ``$RUNTIME_DIRECTORY/metrics`` under systemd (emptied at each start), else a temporary folder."""
    from portal.metrics import prepare_multiprocess, serve_metrics

    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime_dir:
        directory = Path(runtime_dir) / "metrics"
    else:
        directory = Path(tempfile.mkdtemp(prefix="bcc-portal-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    prepare_multiprocess(directory)
    try:
        serve_metrics(args.metrics_host, args.metrics_port, directory)
    except OSError as err:
        print(f"bcc portal serve: --metrics-port {args.metrics_port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0
