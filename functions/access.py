"""Bearer-token checks for the ARM routes, as FastAPI dependencies: 401 without a valid token
(a static one, or Entra ID's), 403 when the caller's roles do not grant the route's action at
the scope its path names (shared/rbac.py); both in ARM's error shape."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from shared.access import AccessConfig, Action, Grant, authorize, bearer_grant
from shared.rbac import scope_of


def _caller(access: AccessConfig, request: Request) -> Grant:
    return bearer_grant(access, request.headers.get("authorization", ""),
                        {"WWW-Authenticate": 'Bearer realm="packetwatch"'})


def requirement(access: AccessConfig, action: Action) -> Callable[[Request], Grant]:
    def check(request: Request) -> Grant:
        grant = _caller(access, request)
        authorize(grant, action, scope_of(request.path_params))
        return grant

    return check


def visibility(access: AccessConfig) -> Callable[[Request], Grant]:
    """For a list: the caller's roles reach somewhere at, above or below the scope its path
    names (403 otherwise; every role reads); the route lists what its roles let it read, as
    ARM's lists do."""
    def check(request: Request) -> Grant:
        grant = _caller(access, request)
        scope = scope_of(request.path_params)
        if not grant.reaches(scope):
            authorize(grant, Action.READ, scope)  # refused: reaching nothing there, it reads nothing there
        return grant

    return check
