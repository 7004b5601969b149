"""The portal's access log without reporter keys: uvicorn's log configuration plus a filter that masks
the key in ``/laporan/<code>/kunci/<key>`` (the reporter's link), so a log reader cannot act as a
reporter. A reverse proxy in front keeps its own log: mask that path there too (docs/portal.md)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

KEY_IN_PATH = re.compile(r"(/kunci/)[^/?#\s]+")


def mask(text: str) -> str:
    return KEY_IN_PATH.sub(r"\1***", text)


class MaskReporterKeys(logging.Filter):
    """Rewrites the request path of uvicorn's access records (their arguments: client, method, path,
    HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], mask(record.args[2]), *record.args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`MaskReporterKeys` on the access log
    (a dict, so that every worker process applies it)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["mask_reporter_keys"] = {"()": f"{__name__}.MaskReporterKeys"}
    config["handlers"]["access"].setdefault("filters", []).append("mask_reporter_keys")
    return config
