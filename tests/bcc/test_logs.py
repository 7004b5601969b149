"""Logging set-up: per-request library chatter stays out of the services' logs unless debugging."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bcc import logs

CHATTY = ("httpx", "httpcore")


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = (*CHATTY, "pymodbus", "")
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_http_request_lines_are_off_at_info_and_on_when_debugging() -> None:
    logs.configure("INFO", "json")
    logging.getLogger().setLevel(logging.INFO)  # basicConfig only sets the root level the first time
    # httpx logs each request at INFO ("HTTP Request: POST .../write"): one line per second per writer
    assert not any(logging.getLogger(name).isEnabledFor(logging.INFO) for name in CHATTY)
    assert logging.getLogger("portal").isEnabledFor(logging.INFO)  # our own INFO lines stay
    logs.configure("DEBUG", "json")
    logging.getLogger().setLevel(logging.DEBUG)
    assert all(logging.getLogger(name).isEnabledFor(logging.DEBUG) for name in CHATTY)
