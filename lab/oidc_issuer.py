"""A local Entra ID for tests and benches: an OpenID Connect issuer over HTTPS that speaks the documented
protocol, per tenant: `/{tenant}/v2.0/.well-known/openid-configuration`, the JWKS at
`/discovery/v2.0/keys`, and the token endpoint `/{tenant}/oauth2/v2.0/token` for the client
credentials grant (what azure-identity's ClientSecretCredential asks), and for a single-page
app the authorization code flow with PKCE (`/{tenant}/oauth2/v2.0/authorize`, which signs in
`user` at once, and the token endpoint's `authorization_code` grant, the verifier checked
against the S256 challenge, with CORS as Entra answers it). Its tokens are RS256
JWTs with Entra's claims (iss, aud, tid, oid, roles, groups, …); `sign` makes any token a
test wants, well formed or not; `rotate` publishes a new signing key and signs with it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from lab.json_server import JsonHandler, json_server
from lab.tls import server_certificate

AUDIENCE = "api://packetwatch"


@dataclass
class Client:
    """A service principal: its application ID, secret, object ID and app roles."""

    client_id: str
    secret: str
    object_id: str
    roles: list[str] = field(default_factory=list)


@dataclass
class Issuer:
    url: str
    ca: Path
    keys: list[tuple[str, rsa.RSAPrivateKey]] = field(default_factory=list)  # (kid, key); the last signs
    clients: dict[str, Client] = field(default_factory=dict)
    jwks_requests: int = 0
    spas: dict[str, str] = field(default_factory=dict)  # a single-page app's client ID -> its redirect URI
    user: Client | None = None  # who signs in at the authorization endpoint
    codes: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)  # code -> client, redirect, challenge, tenant

    def rotate(self) -> str:
        """A new signing key, published beside the old ones and used from now on; its kid."""
        kid = uuid.uuid4().hex
        self.keys.append((kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    def issuer_of(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/v2.0"

    def claims(self, tenant: str, object_id: str, audience: str = AUDIENCE, lifetime: int = 3600,
               **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.issuer_of(tenant), "aud": audience, "tid": tenant, "oid": object_id, "sub": object_id,
                "iat": now, "nbf": now, "exp": now + lifetime, "ver": "2.0", **extra}

    def sign(self, claims: dict[str, Any], kid: str | None = None, key: rsa.RSAPrivateKey | None = None) -> str:
        current_kid, current = self.keys[-1]
        return jwt.encode(claims, key or current, algorithm="RS256", headers={"kid": kid or current_kid})

    def jwks(self) -> dict:
        published = []
        for kid, key in self.keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": published}


@contextmanager
def oidc_issuer(folder: Path) -> Iterator[Issuer]:
    cert, key, ca = server_certificate(folder, "oidc")
    issuer = Issuer("", ca)
    issuer.rotate()

    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802
            parts = urlparse(self.path).path.strip("/").split("/")
            if parts[-2:] == ["v2.0", "keys"]:
                issuer.jwks_requests += 1
                return self._answer(200, issuer.jwks())
            if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                tenant = parts[0]
                return self._answer(200, {
                    "issuer": issuer.issuer_of(tenant), "jwks_uri": f"{issuer.url}/discovery/v2.0/keys",
                    "token_endpoint": f"{issuer.url}/{tenant}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{issuer.url}/{tenant}/oauth2/v2.0/authorize",
                    "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
                    "subject_types_supported": ["pairwise"], "tenant_region_scope": "EU"})
            if parts[1:] == ["oauth2", "v2.0", "authorize"]:
                return self._authorize(parts[0], {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()})
            self._answer(404, {"error": "not_found"})

        def _authorize(self, tenant: str, query: dict[str, str]) -> None:
            redirect = issuer.spas.get(query.get("client_id", ""))
            if redirect is None or query.get("redirect_uri") != redirect or issuer.user is None:
                return self._answer(400, {"error": "invalid_request", "error_description": "AADSTS50011"})
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
                return self._answer(400, {"error": "invalid_request", "error_description": "PKCE (S256) required"})
            code = secrets.token_urlsafe(24)
            issuer.codes[code] = (query["client_id"], redirect, query["code_challenge"], tenant)
            self.send_response(302)
            self.send_header("Location", f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _code_grant(self, form: dict[str, str]) -> None:
            client_id, redirect, challenge, tenant = issuer.codes.pop(form.get("code", ""), ("", "", "", ""))
            verifier = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if not client_id or form.get("client_id") != client_id or form.get("redirect_uri") != redirect \
                    or base64.urlsafe_b64encode(verifier).rstrip(b"=").decode() != challenge or issuer.user is None:
                return self._answer(400, {"error": "invalid_grant"})
            audience = next(s for s in form.get("scope", "").split() if s.endswith("/.default")).removesuffix("/.default")
            user = issuer.user
            token = issuer.sign(issuer.claims(tenant, user.object_id, audience, roles=user.roles, azp=client_id,
                                              name="Signed-in user", preferred_username="user@example.net"))
            self._answer(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token,
                               "scope": form.get("scope", "")})

        def do_OPTIONS(self) -> None:  # noqa: N802
            self.send_response(204)
            for name, value in self.extra_headers().items():
                self.send_header(name, value)
            self.send_header("Access-Control-Allow-Methods", "POST")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            parts = urlparse(self.path).path.strip("/").split("/")
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            client = issuer.clients.get(form.get("client_id", ""))
            if parts[1:] == ["oauth2", "v2.0", "token"] and form.get("grant_type") == "authorization_code":
                return self._code_grant(form)
            if parts[1:] != ["oauth2", "v2.0", "token"] or form.get("grant_type") != "client_credentials":
                return self._answer(400, {"error": "unsupported_grant_type"})
            if client is None or form.get("client_secret") != client.secret:
                return self._answer(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
            audience = form.get("scope", "").removesuffix("/.default")
            token = issuer.sign(issuer.claims(parts[0], client.object_id, audience, roles=client.roles,
                                              appid=client.client_id, azp=client.client_id))
            self._answer(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                               "access_token": token})

        def extra_headers(self) -> dict[str, str]:
            return {"Access-Control-Allow-Origin": self.headers.get("Origin") or "*"}

    with json_server(Handler, (cert, key)) as url:
        issuer.url = url
        yield issuer
