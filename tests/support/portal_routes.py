"""The portal's route table as served, and the role guards on each route (for access-rule tests)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from portal.web.deps import RoleGuard


def guards(route: APIRoute) -> list[RoleGuard]:
    found: list[RoleGuard] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, RoleGuard):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def api_routes(app: FastAPI) -> list[tuple[str, set[str], APIRoute]]:
    """Every API route as served (FastAPI 0.165 includes routers lazily: flatten through its contexts)."""
    out: list[tuple[str, set[str], APIRoute]] = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and ctx.path:
            out.append((ctx.path, set(ctx.methods or ()), ctx.original_route))
    return out
