"""GET /packetwatch/signin: how the console signs people in with Entra ID, as a single-page
app registered in Entra ID does (OAuth 2.0's authorization code flow with PKCE, no secret):
the app registration's client ID (`entra.clientId`), its home tenant's authorization and token
endpoints, and the scope to ask for. 404 while the access file names no client ID."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.access import AccessConfig


def build_signin_router(access: AccessConfig) -> APIRouter:
    router = APIRouter()

    @router.get("/packetwatch/signin", include_in_schema=False)
    def signin() -> JSONResponse:
        entra = access.entra
        if entra is None or entra.client_id is None:
            return JSONResponse({"error": {"code": "NotFound", "message": "Entra ID sign-in is not configured "
                                           "(entra.clientId in the access file)"}}, status_code=404)
        base = f"{entra.authority.rstrip('/')}/{entra.tenants[0]}/oauth2/v2.0"
        return JSONResponse({"clientId": entra.client_id, "authorizationEndpoint": f"{base}/authorize",
                             "tokenEndpoint": f"{base}/token", "scope": f"{entra.audiences[0]}/.default openid"})

    return router
