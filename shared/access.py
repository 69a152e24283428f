"""Who may call the ARM API: bearer tokens, stored as SHA-256 hashes, each scoped to
subscriptions with a role. Read from a YAML or JSON file (PACKETWATCH_ACCESS_CONFIG):

    tokens:
      - name: ops-team
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        subscriptions: ["00000000-0000-0000-0000-000000000001"]   # or ["*"]
        role: contributor                                          # or reader

    brokerUsers:                      # queue submissions (shared/submissions.py) whose
      - user: soar-playbooks          # user_id RabbitMQ vouches for (it must be the
        subscriptions: ["*"]          # publishing connection's own user)
        role: contributor

`packetwatch token create --name N --role R --subscription S` makes a token, stores its hash
here and prints the token once; `packetwatch token hash` prints the hash of a token. With no
tokens configured, every ARM call is refused. `authorize` is the one check of a grant against
what a call needs, over HTTP and on the queue alike.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from enum import Enum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.config_files import load_model
from shared.errors import AuthenticationFailed, AuthorizationFailed, InvalidAuthenticationToken, InvalidField


class Role(str, Enum):
    READER = "reader"
    CONTRIBUTOR = "contributor"


class Grant(BaseModel):
    """Subscriptions and a role, held by a token or a broker user."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subscriptions: list[str] = Field(min_length=1)
    role: Role

    @property
    def holder(self) -> str:
        raise NotImplementedError

    def covers(self, subscription: str) -> bool:
        return "*" in self.subscriptions or subscription.lower() in {s.lower() for s in self.subscriptions}

    def allows(self, needed: Role) -> bool:
        return self.role is Role.CONTRIBUTOR or needed is Role.READER


class TokenGrant(Grant):
    name: str = Field(min_length=1, max_length=80)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def holder(self) -> str:
        return f"token {self.name!r}"


class BrokerUserGrant(Grant):
    user: str = Field(min_length=1, max_length=255)

    @property
    def holder(self) -> str:
        return f"broker user {self.user!r}"


def authorize(grant: Grant, needed: Role, subscription: str | None) -> None:
    """AuthorizationFailed unless `grant` covers `subscription` with the `needed` role."""
    if subscription is not None and not grant.covers(subscription):
        raise AuthorizationFailed(f"{grant.holder} has no access to subscription {subscription!r}",
                                  "subscriptionId")
    if not grant.allows(needed):
        raise AuthorizationFailed(f"{grant.holder} is a {grant.role.value}; this call needs {needed.value}")


def bearer_grant(access: "AccessConfig", authorization: str, headers: dict[str, str] | None = None) -> TokenGrant:
    """The grant of an `Authorization: Bearer …` value; AuthenticationFailed without one,
    InvalidAuthenticationToken for a token that is not known (`headers` go with either)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("a bearer token is required (Authorization: Bearer …)", headers=headers)
    grant = access.grant_for(token.strip())
    if grant is None:
        raise InvalidAuthenticationToken("the bearer token is not known", headers=headers)
    return grant


class AccessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tokens: list[TokenGrant] = Field(default_factory=list)
    broker_users: list[BrokerUserGrant] = Field(default_factory=list, alias="brokerUsers")

    def grant_for_broker_user(self, user: str) -> BrokerUserGrant | None:
        return next((grant for grant in self.broker_users if grant.user == user), None)

    def grant_for(self, token: str) -> TokenGrant | None:
        """The grant whose hash matches; every grant is compared, in constant time each."""
        digest = hash_token(token)
        found = None
        for grant in self.tokens:
            if hmac.compare_digest(digest, grant.sha256):
                found = grant
        return found


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_access_config(path: str | None) -> AccessConfig:
    return load_model(AccessConfig, path, "PACKETWATCH_ACCESS_CONFIG")


TOKEN_PREFIX = "pwt_"


def new_token() -> str:
    """A new API token: 256 random bits behind a fixed prefix, so it never starts with "-"
    (one in 64 bare url-safe tokens does, and `--token -…` is then read as an option) and a
    secret scanner can tell it for what it is."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(path: Path, name: str, role: Role, subscriptions: list[str]) -> str:
    """Make a token, add its hash to the access file at `path` (created if missing, readable
    by its owner only) and return the token: the only time it is shown."""
    config = load_access_config(str(path)) if path.exists() else AccessConfig()
    if any(grant.name == name for grant in config.tokens):
        raise InvalidField("--name", name, f"a token with this name is already in {path}")
    token = new_token()
    config.tokens.append(TokenGrant(name=name, sha256=hash_token(token), subscriptions=subscriptions, role=role))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config.model_dump(mode="json", by_alias=True), out, sort_keys=False)
    os.replace(temporary, path)
    return token
