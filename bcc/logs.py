"""structlog set-up shared by every ``bcc`` service: JSON in production, readable console otherwise."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(level: str | None = None, fmt: str | None = None) -> None:
    level_name = (level or os.environ.get("BCC_LOG_LEVEL", "INFO")).upper()
    fmt = fmt or os.environ.get("BCC_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    logging.basicConfig(level=level_name, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    # pymodbus logs every failed request at ERROR; the gateway logs state changes once instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    # httpx logs every request at INFO: one line per InfluxDB write each second. Kept for DEBUG only.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.NOTSET if level_name == "DEBUG" else logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level_name]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
