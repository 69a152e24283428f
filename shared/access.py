"""Who may call the ARM API, and what each may do where (shared/rbac.py: ARM's actions,
roles and scopes). Read from a YAML or JSON file (PACKETWATCH_ACCESS_CONFIG):

    tokens:                           # static bearer tokens, for automation, stored as SHA-256
      - name: ops-team
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        subscriptions: ["00000000-0000-0000-0000-000000000001"]   # or ["*"]
        role: contributor                                          # or reader

    brokerUsers:                      # queue submissions (shared/submissions.py) whose
      - user: soar-playbooks          # user_id RabbitMQ vouches for (it must be the
        subscriptions: ["*"]          # publishing connection's own user)
        role: contributor

    entra:                            # people and apps signing in with Entra ID (shared/entra_tokens.py)
      audiences: ["api://packetwatch", "<the app registration's application ID>"]
      tenants: ["<tenant ID>"]
    roleAssignments:                  # as ARM's: a role at a scope, and everything below it
      - principalId: <object ID>      # a user's, a group's or a service principal's
        role: reader
        scope: /subscriptions/<sub>/resourceGroups/<group>
      - appRole: PacketCapture.Contributor     # an app role of the token (its `roles` claim)
        role: contributor
        scope: /subscriptions/<sub>

`packetwatch token create --name N --role R --subscription S` makes a token, stores its hash
here and prints the token once; `packetwatch token hash` prints the hash of a token. With
nothing configured, every ARM call is refused. `authorize` is the one check of a grant against
what a call does where, over HTTP and on the queue alike.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from shared.config_files import load_model
from shared.entra_tokens import EntraIdentity, EntraSettings, EntraTokens
from shared.errors import AuthenticationFailed, AuthorizationFailed, InvalidAuthenticationToken, InvalidField
from shared.rbac import Action, Role, within

__all__ = ["Action", "Role"]  # the roles and actions, importable from here too
SCOPE = re.compile(r"^/subscriptions/[^/]+(/resourceGroups/[^/]+(/providers/Microsoft\.Network/networkWatchers/[^/]+)?)?$",
                   re.IGNORECASE)


class Grant:
    """What one caller may do: roles at scopes (`assignments`)."""

    @property
    def holder(self) -> str:
        raise NotImplementedError

    def assignments(self) -> list[tuple[Role, str]]:
        raise NotImplementedError

    def permits(self, action: Action, resource: str) -> bool:
        """Whether `action` is granted on `resource` (at it or above it); on "/", anywhere."""
        return any(action in role.actions and (resource == "/" or within(resource, scope))
                   for role, scope in self.assignments())

    def reaches(self, scope: str) -> bool:
        """Whether any of its roles is at, above or below `scope` (a subscription it may list)."""
        return any(within(scope, held) or within(held, scope) for _, held in self.assignments())


class StaticGrant(Grant, BaseModel):
    """Subscriptions and a role, held by a token or a broker user."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subscriptions: list[str] = Field(min_length=1)
    role: Role

    def assignments(self) -> list[tuple[Role, str]]:
        return [(self.role, "/" if subscription == "*" else f"/subscriptions/{subscription}")
                for subscription in self.subscriptions]


class TokenGrant(StaticGrant):
    name: str = Field(min_length=1, max_length=80)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def holder(self) -> str:
        return f"token {self.name!r}"


class BrokerUserGrant(StaticGrant):
    user: str = Field(min_length=1, max_length=255)

    @property
    def holder(self) -> str:
        return f"broker user {self.user!r}"


class RoleAssignment(BaseModel):
    """A role at a scope for one principal (by object ID) or for everyone with an app role."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    principal_id: str | None = Field(default=None, alias="principalId")
    app_role: str | None = Field(default=None, alias="appRole")
    role: Role
    scope: str

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: str) -> str:
        if not SCOPE.match(scope):
            raise ValueError("a scope is /subscriptions/S, /subscriptions/S/resourceGroups/R, or a network "
                             "watcher's resource ID")
        return scope

    @model_validator(mode="after")
    def _one_principal(self) -> "RoleAssignment":
        if (self.principal_id is None) == (self.app_role is None):
            raise ValueError("give either principalId or appRole")
        return self

    def holds(self, identity: EntraIdentity) -> bool:
        if self.principal_id is not None:
            principal = self.principal_id.lower()
            return principal == identity.object_id or principal in identity.groups
        return self.app_role in identity.app_roles


class EntraGrant(Grant):
    """What an Entra ID identity holds: the role assignments that name it, its groups or its app roles."""

    def __init__(self, identity: EntraIdentity, assignments: list[RoleAssignment]) -> None:
        self.identity = identity
        self.held = [(a.role, a.scope) for a in assignments if a.holds(identity)]

    @property
    def holder(self) -> str:
        return f"{self.identity.name} (object ID {self.identity.object_id})"

    def assignments(self) -> list[tuple[Role, str]]:
        return self.held


def authorize(grant: Grant, action: Action, resource: str) -> None:
    """AuthorizationFailed, in ARM's words, unless `grant` may do `action` on `resource`."""
    if not grant.permits(action, resource):
        raise AuthorizationFailed(f"{grant.holder} does not have authorization to perform action "
                                  f"'{action.value}' over scope '{resource}'", "scope")


def bearer_grant(access: "AccessConfig", authorization: str, headers: dict[str, str] | None = None) -> Grant:
    """The grant of an `Authorization: Bearer …` value: a static token, or an Entra ID token;
    AuthenticationFailed without one, InvalidAuthenticationToken for a token that is neither
    (`headers` go with either)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("a bearer token is required (Authorization: Bearer …)", headers=headers)
    token = token.strip()
    grant = access.grant_for(token)
    if grant is not None:
        return grant
    entra = access.entra_tokens()
    if entra is None or token.count(".") != 2:
        raise InvalidAuthenticationToken("the bearer token is not known", headers=headers)
    try:
        return EntraGrant(entra.identity(token), access.role_assignments)
    except InvalidAuthenticationToken as exc:
        raise InvalidAuthenticationToken(str(exc), headers=headers) from None


class AccessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tokens: list[TokenGrant] = Field(default_factory=list)
    broker_users: list[BrokerUserGrant] = Field(default_factory=list, alias="brokerUsers")
    entra: EntraSettings | None = None
    role_assignments: list[RoleAssignment] = Field(default_factory=list, alias="roleAssignments")
    _entra_tokens: EntraTokens | None = PrivateAttr(default=None)

    def entra_tokens(self) -> EntraTokens | None:
        """Entra ID's token validation, when configured (its keys are read on first use)."""
        if self.entra is not None and self._entra_tokens is None:
            self._entra_tokens = EntraTokens(self.entra)
            self._entra_tokens.start()
        return self._entra_tokens

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
