"""Pytest plugin: a real Mosquitto running the project's config (mosquitto/), one per test.

Start-up is about 20-30 ms, so every test gets its own broker, port, users and
persistence directory: no shared retained state, and tests can run in parallel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mosquitto import ROLES, MosquittoProcess, find_mosquitto, generate_demo_secrets


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """A running Mosquitto on a free loopback port with generated passwords for every role in ROLES.

    Use ``mosquitto.host``, ``mosquitto.port`` and ``mosquitto.password(role)`` (username = role).
    """
    if find_mosquitto() is None:
        pytest.fail("mosquitto binary not installed: run scripts/sysdeps.sh (Debian package: mosquitto)")
    broker = MosquittoProcess(tmp_path / "mosquitto", credentials=generate_demo_secrets(ROLES))
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
