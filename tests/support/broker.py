"""Pytest plugin: a real Mosquitto running the project's config (mosquitto/), one per test.

Start-up is about 20-30 ms, so every test gets its own broker, port, users and
persistence directory: no shared retained state, and tests can run in parallel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bcc_contract.accounts import DEFAULT_ACCOUNTS
from mosquitto import ROLES, MosquittoProcess, find_mosquitto, generate_demo_secrets


@pytest.fixture
async def mosquitto(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[MosquittoProcess]:
    """A running Mosquitto on a free loopback port with generated passwords for every role in ROLES.

    Use ``mosquitto.host``, ``mosquitto.port``, ``mosquitto.account(role, k)`` (the username: the role,
    or ``<role>_<k>`` when the role has several accounts) and ``mosquitto.password(account)``. The broker
    makes the username the client id, so a test that runs two clients of one role at once (a second
    recorder, a look at what the gateway receives) asks for two accounts:
    ``@pytest.mark.broker_accounts(gateway=2)``.
    """
    if find_mosquitto() is None:
        pytest.fail("mosquitto binary not installed: run scripts/sysdeps.sh (Debian package: mosquitto)")
    marker = request.node.get_closest_marker("broker_accounts")
    accounts = {**DEFAULT_ACCOUNTS, **(marker.kwargs if marker else {})}
    broker = MosquittoProcess(
        tmp_path / "mosquitto", credentials=generate_demo_secrets(ROLES), accounts=accounts
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
