"""The portal keeps one typed runtime: ``app.state`` holds nothing else, before and while it runs, and
the route modules reach shared code through portal.web.deps and portal.web.submission, not each other."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

import portal.web
from portal.runtime import PortalRuntime, runtime_of

WEB = Path(portal.web.__file__).parent


def test_app_state_holds_only_the_runtime(app: FastAPI) -> None:
    assert set(app.state._state) == {"runtime"}
    assert isinstance(runtime_of(app), PortalRuntime)
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        assert set(app.state._state) == {"runtime"}  # the lifespan adds nothing either


def route_modules() -> set[str]:
    """The modules of portal/web that define a router (``router = APIRouter(...)``)."""
    return {p.stem for p in WEB.glob("*.py") if "router = APIRouter(" in p.read_text(encoding="utf-8")}


def test_route_modules_do_not_import_each_other() -> None:
    routes = route_modules()
    assert {"public", "staff", "open311", "console", "wall"} <= routes
    for name in routes:
        tree = ast.parse((WEB / f"{name}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
        assert not {f"portal.web.{r}" for r in routes} & imported, name
