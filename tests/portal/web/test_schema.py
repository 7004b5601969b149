"""schemathesis against the portal's OpenAPI schema: no server error and no response outside the schema.

Runs as an admin (so the staff pages are exercised, not just their login redirect) on both databases.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.support.portal_app import add_user, login


@pytest.fixture
def web_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def admin_cookie(app: FastAPI) -> str:
    with TestClient(app) as c:
        login(c, add_user(app, "admin"))
        return f"bcc_session={c.cookies['bcc_session']}"


schema = schemathesis.pytest.from_fixture("web_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_no_schema_violations(case: Any, admin_cookie: str) -> None:
    case.call_and_validate(
        headers={"Cookie": admin_cookie},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
