"""Entra ID (OAuth 2.0 / OpenID Connect) access tokens for PacketWatch's own application.

Validation pins everything a token could bend: the algorithm (RS256 only: `alg: none` and a
token signed with HS256 over the public key are refused), the signing key (by `kid`, from the
tenants' published JWKS), the audience (PacketWatch's own, e.g. `api://packetwatch` or its
application ID; never ARM's, whose tokens only ARM may accept), the tenant (`tid`, one of those
configured) and the issuer that tenant's OpenID configuration names (or, for a v1.0 token,
`https://sts.windows.net/{tid}/`), the times (`exp`, `nbf`, with a minute of clock skew), and
the claims PacketWatch acts on (`oid`, `tid`).

Keys are fetched before the first request and refreshed in the background, so no request
waits on a fetch in the steady state; a token signed with a key not seen yet (Entra rotates
its keys) makes one fetch at once, at most every REFETCH_SECONDS.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import InvalidAuthenticationToken

log = logging.getLogger("packetwatch.entra")
ARM_AUDIENCES = {"https://management.azure.com", "https://management.azure.com/", "https://management.core.windows.net",
                 "https://management.core.windows.net/", "797f4846-ba00-4fd7-ba43-dac1f8f63013"}
ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 60
REFRESH_SECONDS = 3600.0  # keys re-read in the background this often
REFETCH_SECONDS = 10.0  # an unknown kid fetches the keys at once, at most this often
REQUIRED = ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]


class EntraSettings(BaseModel):
    """The access file's `entra` section."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    audiences: list[str] = Field(min_length=1)  # e.g. ["api://packetwatch", "<application (client) ID>"]
    tenants: list[str] = Field(min_length=1)  # tenant IDs whose tokens are taken
    authority: str = "https://login.microsoftonline.com"
    client_id: str | None = Field(default=None, alias="clientId")  # the console's sign-in (PKCE), if any

    @field_validator("audiences")
    @classmethod
    def _not_arm(cls, audiences: list[str]) -> list[str]:
        arm = [audience for audience in audiences if audience.lower() in ARM_AUDIENCES]
        if arm:
            raise ValueError(f"{arm[0]} is Azure Resource Manager's audience: its tokens are for ARM alone; "
                             "give PacketWatch's own application ID URI (such as api://packetwatch)")
        return audiences

    @field_validator("tenants")
    @classmethod
    def _lower(cls, tenants: list[str]) -> list[str]:
        return [tenant.lower() for tenant in tenants]


@dataclass(frozen=True)
class EntraIdentity:
    """Who a validated token speaks for."""

    object_id: str
    tenant: str
    name: str
    groups: frozenset[str]
    app_roles: frozenset[str]


def _verify() -> ssl.SSLContext | bool:
    """The system's trust, or the authority named by SSL_CERT_FILE / REQUESTS_CA_BUNDLE."""
    authority = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    return ssl.create_default_context(cafile=authority) if authority else True


@dataclass
class EntraTokens:
    settings: EntraSettings
    keys: dict[str, PyJWK] = field(default_factory=dict)
    issuers: dict[str, str] = field(default_factory=dict)  # tenant -> its v2.0 issuer
    fetched_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False

    def start(self) -> None:
        """Read the tenants' configuration and keys now, then refresh them in the background."""
        if self.started:
            return
        self.started = True
        try:
            self.fetch()
        except (httpx.HTTPError, ValueError) as exc:
            log.error("Entra ID signing keys not read yet (%s): its tokens are refused until they are", exc)
        threading.Thread(target=self._refresh_forever, name="entra-keys", daemon=True).start()

    def _refresh_forever(self) -> None:
        while True:
            time.sleep(REFRESH_SECONDS if self.keys else REFETCH_SECONDS)
            try:
                self.fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("Entra ID signing keys not refreshed (%s); the ones held stay in use", exc)

    def fetch(self) -> None:
        keys: dict[str, PyJWK] = {}
        issuers: dict[str, str] = {}
        with httpx.Client(verify=_verify(), timeout=10) as client:
            jwks_uris = set()
            for tenant in self.settings.tenants:
                url = f"{self.settings.authority.rstrip('/')}/{tenant}/v2.0/.well-known/openid-configuration"
                configuration = client.get(url).raise_for_status().json()
                issuers[tenant] = str(configuration["issuer"])
                jwks_uris.add(str(configuration["jwks_uri"]))
            for jwks_uri in sorted(jwks_uris):  # Entra's tenants share one key set
                for key in client.get(jwks_uri).raise_for_status().json().get("keys", []):
                    if key.get("kty") == "RSA" and key.get("kid") and key.get("use", "sig") == "sig":
                        keys[key["kid"]] = PyJWK(key, "RS256")
        with self.lock:
            self.keys, self.issuers, self.fetched_at = keys, issuers, time.monotonic()
        log.info("Entra ID: %d signing key(s) for %d tenant(s)", len(keys), len(issuers))

    def _key(self, kid: str) -> PyJWK:
        key = self.keys.get(kid)
        if key is None and time.monotonic() - self.fetched_at >= REFETCH_SECONDS:
            try:
                self.fetch()  # a key not seen yet: Entra may have rotated to it
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("Entra ID signing keys not fetched for kid %s: %s", kid, exc)
            key = self.keys.get(kid)
        if key is None:
            raise InvalidAuthenticationToken(f"the token's signing key {kid!r} is not one of the tenants' keys")
        return key

    def identity(self, token: str) -> EntraIdentity:
        """The identity a token speaks for; InvalidAuthenticationToken saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidAuthenticationToken(f"the bearer token is not a JWT: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidAuthenticationToken(f"the token's algorithm {header.get('alg')!r} is not accepted (RS256)")
        key = self._key(str(header.get("kid") or ""))
        try:
            claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=ALGORITHMS,
                                                audience=self.settings.audiences, leeway=LEEWAY_SECONDS,
                                                options={"require": REQUIRED, "verify_iss": False})
        except jwt.PyJWTError as exc:
            raise InvalidAuthenticationToken(f"the token is not valid: {exc}") from None
        tenant = str(claims["tid"]).lower()
        if tenant not in self.settings.tenants:
            raise InvalidAuthenticationToken(f"tokens of tenant {tenant} are not accepted here")
        expected = {self.issuers.get(tenant), f"https://sts.windows.net/{tenant}/"}
        if claims["iss"] not in expected:
            raise InvalidAuthenticationToken(f"the token's issuer {claims['iss']!r} is not tenant {tenant}'s")
        return EntraIdentity(object_id=str(claims["oid"]).lower(), tenant=tenant,
                             name=str(claims.get("preferred_username") or claims.get("upn") or claims.get("name")
                                      or claims.get("appid") or claims.get("azp") or claims["oid"]),
                             groups=frozenset(str(g).lower() for g in claims.get("groups", [])),
                             app_roles=frozenset(str(r) for r in claims.get("roles", [])))
