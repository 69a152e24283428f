"""A local server that answers as the managed identity endpoint of Azure App Service and
Azure Functions does (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01): the
secret header required, one token per `resource`, `expires_on` in epoch seconds. Its tokens
are JWTs with Entra ID's claims (issuer, audience, tenant, object ID) for Azurite's OAuth
check, which reads them without checking a signature, as its documentation says."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from lab.json_server import JsonHandler, json_server

TENANT = "72f988bf-0000-4000-8000-00000000a1b2"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_for(resource: str, object_id: str, lifetime: int = 3600) -> tuple[str, int]:
    now = int(time.time())
    claims = {"aud": resource, "iss": f"https://sts.windows.net/{TENANT}/", "iat": now, "nbf": now,
              "exp": now + lifetime, "oid": object_id, "tid": TENANT, "sub": object_id, "ver": "1.0"}
    header = {"alg": "RS256", "typ": "JWT"}
    body = ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                     _b64(secrets.token_bytes(64))])
    return body, now + lifetime


@dataclass
class IdentityEndpoint:
    url: str
    header: str
    object_id: str
    resources: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """What the Functions host gives a function app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header}


@contextmanager
def identity_endpoint() -> Iterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint("", secrets.token_hex(16), "3c1e8a5d-0000-4000-8000-" + secrets.token_hex(6))

    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802
            query = parse_qs(urlparse(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != endpoint.header:
                return self._answer(401, {"error": "invalid_request", "error_description": "bad identity header"})
            if query.get("api-version") != ["2019-08-01"] or "resource" not in query:
                return self._answer(400, {"error": "invalid_request", "error_description": "api-version and "
                                                                                         "resource are required"})
            resource = query["resource"][0]
            endpoint.resources.append(resource)
            token, expires = token_for(resource, endpoint.object_id)
            self._answer(200, {"access_token": token, "expires_on": str(expires), "resource": resource,
                               "token_type": "Bearer", "client_id": endpoint.object_id})

    with json_server(Handler) as url:
        endpoint.url = f"{url}/msi/token"
        yield endpoint
