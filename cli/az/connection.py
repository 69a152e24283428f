"""The API connection of the commands: the typed client (cli/arm_client.py) and the
subscription, from flags or the environment (PACKETWATCH_API_URL, PACKETWATCH_TOKEN,
PACKETWATCH_SUBSCRIPTION). Without a static token, and with PACKETWATCH_API_AUDIENCE (the
API's application ID URI, e.g. api://packetwatch), the commands sign in with azure-identity as
az does: a service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), a
workload or managed identity, or `az login`'s own account."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cli.arm_client import ArmClient
from cli.capture_body import CliError

DEFAULT_API = "http://127.0.0.1:8080"


class MissingSetting(CliError):
    """A setting given neither as a flag nor in the environment."""

    def __init__(self, what: str, flag: str, env: str, hint: str = "") -> None:
        self.what, self.flag, self.env, self.hint = what, flag, env, hint
        super().__init__(f"{flag} is required (or set {env})")

    @property
    def as_az_says(self) -> str:
        return f"no {self.what}: " + (f"set {self.env} ({self.hint})" if self.hint else
                                      f"give {self.flag} or set {self.env}")


def subscription_of(given: str | None) -> str:
    """--subscription, else PACKETWATCH_SUBSCRIPTION; MissingSetting without either."""
    subscription = given or os.environ.get("PACKETWATCH_SUBSCRIPTION")
    if not subscription:
        raise MissingSetting("subscription", "--subscription", "PACKETWATCH_SUBSCRIPTION")
    return subscription


def entra_token() -> str | None:
    """An Entra ID access token for the API (PACKETWATCH_API_AUDIENCE), from azure-identity's
    DefaultAzureCredential; None when no audience is set. A sovereign or private authority
    (AZURE_AUTHORITY_HOST) is taken as given, without Microsoft's instance discovery."""
    audience = os.environ.get("PACKETWATCH_API_AUDIENCE")
    if not audience:
        return None
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import DefaultAzureCredential

    authority = os.environ.get("AZURE_AUTHORITY_HOST", "")
    custom = bool(authority) and "login.microsoftonline.com" not in authority
    try:
        with DefaultAzureCredential(disable_instance_discovery=custom) as credential:
            return credential.get_token(f"{audience.rstrip('/')}/.default").token
    except ClientAuthenticationError as exc:
        raise CliError(f"could not sign in with Entra ID for {audience}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True)
class Connection:
    client: ArmClient
    subscription: str

    @classmethod
    def open(cls, subscription: str | None = None, api: str | None = None, token: str | None = None,
             needs_subscription: bool = True) -> "Connection":
        token = token or os.environ.get("PACKETWATCH_TOKEN") or entra_token()
        if not token:
            raise MissingSetting("API token", "--token", "PACKETWATCH_TOKEN",
                                 "packetwatch token create makes one; or set PACKETWATCH_API_AUDIENCE to sign in "
                                 "with Entra ID")
        chosen = subscription_of(subscription) if needs_subscription else ""
        return cls(ArmClient(api or os.environ.get("PACKETWATCH_API_URL", DEFAULT_API), token), chosen)
