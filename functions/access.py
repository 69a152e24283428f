"""Bearer-token checks for the ARM routes: 401 without a known token, 403 outside its
subscriptions or role; both in ARM's error shape."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from shared.access import AccessConfig, Role, TokenGrant, authorize, bearer_grant


def requirement(access: AccessConfig, role: Role) -> Callable[[Request], TokenGrant]:
    def check(request: Request) -> TokenGrant:
        grant = bearer_grant(access, request.headers.get("authorization", ""),
                             {"WWW-Authenticate": 'Bearer realm="packetwatch"'})
        authorize(grant, role, request.path_params.get("subscriptionId"))
        return grant

    return check
