"""Wall fixtures: the portal's app/client/clock on SQLite and PostgreSQL (from tests/portal), the real
stack (Mosquitto, the demo room's simulators, the gateway, the portal under uvicorn) from tests/console.
"""

from __future__ import annotations

from tests.console.conftest import stack
from tests.portal.conftest import app, client, clock, settings

__all__ = ["app", "client", "clock", "settings", "stack"]
