"""Fixtures of the gateway tests: the separate Home Assistant virtualenv."""

from __future__ import annotations

import pytest

from tests.support.homeassistant import ha_venv_python


@pytest.fixture(scope="session")
def ha_python() -> str:
    """Python of a separate venv with Home Assistant (built once, cached under ~/.cache/bcc)."""
    return ha_venv_python()
