"""A real Home Assistant core for tests: its virtualenv, a config directory wired to the test broker,
an access token, the process, and REST API calls.

Home Assistant 2025.4 takes the MQTT broker from a config entry, not from configuration.yaml, so the
config directory gets ``.storage/core.config_entries`` with an mqtt entry (the form the UI's config
flow saves), ``.storage/auth`` with one admin user and a long-lived token, and ``.storage/onboarding``
marked done, as a Home Assistant that has been set up once has them. ``hass`` runs with ``--skip-pip``:
scripts/ha-venv.sh installs every requirement beforehand, so a test never installs packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bcc_common.net import free_port
from bcc_common.process import stop_process
from mosquitto import MosquittoProcess
from tests.support.paths import ROOT

HA_VENV_SCRIPT = ROOT / "scripts" / "ha-venv.sh"
# Home Assistant's MQTT client id, so the broker log shows which subscriptions are Home Assistant's.
CLIENT_ID = "hass-bcc-test"
# PyJWT ships with Home Assistant; the token is the JWT Home Assistant itself would issue for the
# refresh token (HS256 with the token's jwt_key, issuer = the token's id).
_MINT_TOKEN = (
    "import jwt, sys, time; now = int(time.time()); "
    "print(jwt.encode({'iss': sys.argv[1], 'iat': now, 'exp': now + 86400}, sys.stdin.read(), 'HS256'))"
)


def ha_venv_python() -> str:
    """Python of the separate Home Assistant venv (scripts/ha-venv.sh builds it once, then reuses it)."""
    done = subprocess.run([str(HA_VENV_SCRIPT)], capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _storage(key: str, data: dict[str, Any], version: int = 1, minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data}, indent=1)


@dataclass(frozen=True)
class HomeAssistantConfig:
    """A config directory ready for ``hass -c``: HTTP on ``port``, REST API calls with ``token``."""

    config_dir: Path
    port: int
    token: str


def write_config(config_dir: Path, ha_python: str, broker: MosquittoProcess) -> HomeAssistantConfig:
    """Configuration, MQTT config entry (role ``homeassistant``), admin user with a long-lived token."""
    storage = config_dir / ".storage"
    storage.mkdir(parents=True)
    port = free_port()
    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n  name: BCC test\n  unit_system: metric\n  time_zone: Asia/Jakarta\n"
        "  latitude: 3.6\n  longitude: 98.48\n  elevation: 28\n  country: ID\n  currency: IDR\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\napi:\n"
        "logger:\n  default: warning\n  logs:\n    homeassistant.components.mqtt: info\n",
        encoding="utf-8",
    )
    mqtt_entry = {
        "entry_id": "bcctestmqttentry",
        "domain": "mqtt",
        "title": "BCC test broker",
        "version": 1,
        "minor_version": 2,
        "source": "user",
        "unique_id": None,
        "disabled_by": None,
        "data": {
            "broker": broker.host,
            "port": broker.port,
            "username": "homeassistant",
            "password": broker.password("homeassistant"),
            "client_id": CLIENT_ID,
        },
        "options": {"discovery": True, "discovery_prefix": "homeassistant"},
    }
    (storage / "core.config_entries").write_text(_storage("core.config_entries", {"entries": [mqtt_entry]}))
    user_id, token_id, jwt_key = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(64)
    auth = {
        "users": [
            {
                "id": user_id,
                "group_ids": ["system-admin"],
                "is_owner": True,
                "is_active": True,
                "name": "BCC test",
                "system_generated": False,
                "local_only": False,
            }
        ],
        "groups": [{"id": "system-admin"}, {"id": "system-users"}, {"id": "system-read-only"}],
        "credentials": [],
        "refresh_tokens": [
            {
                "id": token_id,
                "user_id": user_id,
                "client_id": None,
                "client_name": "bcc-test",
                "client_icon": None,
                "token_type": "long_lived_access_token",
                "created_at": "2025-01-01T00:00:00+00:00",
                "access_token_expiration": 86400,
                "token": secrets.token_hex(64),
                "jwt_key": jwt_key,
                "last_used_at": None,
                "last_used_ip": None,
                "expire_at": None,
                "version": None,
            }
        ],
    }
    (storage / "auth").write_text(_storage("auth", auth))
    onboarding = {"done": ["user", "core_config", "analytics", "integration"]}
    (storage / "onboarding").write_text(_storage("onboarding", onboarding, version=4))
    minted = subprocess.run(
        [ha_python, "-c", _MINT_TOKEN, token_id], input=jwt_key, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return HomeAssistantConfig(config_dir, port, minted.stdout.strip())


@dataclass
class HomeAssistant:
    """A running ``hass`` and an HTTP client for its REST API."""

    config: HomeAssistantConfig
    process: asyncio.subprocess.Process
    http: httpx.AsyncClient
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    async def states(self) -> dict[str, dict[str, Any]]:
        resp = await self.http.get("/api/states")
        resp.raise_for_status()
        return {s["entity_id"]: s for s in resp.json()}

    async def call_service(self, domain: str, service: str, data: dict[str, Any]) -> None:
        resp = await self.http.post(f"/api/services/{domain}/{service}", json=data)
        resp.raise_for_status()

    async def wait_states(
        self, check: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Poll /api/states until ``check`` holds (bounded; the log tail explains a failure)."""
        deadline = time.monotonic() + timeout
        while not check(states := await self.states()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Home Assistant states not as expected in {timeout} s:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.2)  # polling period of the REST API, not a readiness guess
        return states


@contextlib.asynccontextmanager
async def running_home_assistant(
    ha_python: str, config: HomeAssistantConfig, ready_timeout_s: float = 240.0
) -> AsyncIterator[HomeAssistant]:
    """Start ``hass`` on ``config`` and yield once its REST API answers with our token."""
    log_path = config.config_dir / "hass.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            ha_python, "-m", "homeassistant", "--config", str(config.config_dir), "--skip-pip",
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        )  # fmt: skip
    headers = {"Authorization": f"Bearer {config.token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.port}", headers=headers) as http:
        ha = HomeAssistant(config, proc, http, log_path)
        try:
            await _wait_api(ha, ready_timeout_s)
            yield ha
        finally:
            await stop_process(proc)


async def _wait_api(ha: HomeAssistant, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ha.process.returncode is not None:
            raise AssertionError(f"hass exited with {ha.process.returncode}:\n{ha.log_tail()}")
        with contextlib.suppress(httpx.TransportError):
            resp = await ha.http.get("/api/")
            assert resp.status_code != 401, "Home Assistant rejected the test's access token"
            if resp.status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"Home Assistant API not up in {timeout} s:\n{ha.log_tail()}")
        await asyncio.sleep(0.2)  # polling period of the readiness check, not a readiness guess
