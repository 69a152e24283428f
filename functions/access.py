"""Bearer-token checks for the ARM routes: 401 without a known token, 403 outside its
subscriptions or role; both in ARM's error shape."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from shared.access import AccessConfig, Role, TokenGrant
from shared.errors import AuthenticationFailed, AuthorizationFailed, InvalidAuthenticationToken


def requirement(access: AccessConfig, role: Role) -> Callable[[Request], TokenGrant]:
    def check(request: Request) -> TokenGrant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="packetwatch"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("a bearer token is required (Authorization: Bearer …)", headers=challenge)
        grant = access.grant_for(token.strip())
        if grant is None:
            raise InvalidAuthenticationToken("the bearer token is not known", headers=challenge)
        subscription = request.path_params.get("subscriptionId")
        if subscription is not None and not grant.covers(subscription):
            raise AuthorizationFailed(f"token {grant.name!r} has no access to subscription {subscription!r}",
                                      "subscriptionId")
        if not grant.allows(role):
            raise AuthorizationFailed(f"token {grant.name!r} is a {grant.role.value}; this call needs {role.value}")
        return grant

    return check
