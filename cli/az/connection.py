"""The API connection of the az-shaped commands, and their errors as az reports them:
`ERROR: (Code) message`, exit 3 for a resource that is not there, 1 for any other error,
and the URL named when the API cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
import os
from dataclasses import dataclass
from typing import Any

import httpx
from knack.util import CLIError

from cli.arm_client import ApiError, ArmClient, checked

DEFAULT_API = "http://127.0.0.1:8080"


class ResourceNotFoundError(CLIError):
    """Exit code 3, as az's."""


@dataclass(frozen=True)
class Connection:
    client: ArmClient
    subscription: str

    @classmethod
    def from_environment(cls, subscription: str | None) -> "Connection":
        token = os.environ.get("PACKETWATCH_TOKEN")
        if not token:
            raise CLIError("no API token: set PACKETWATCH_TOKEN (packetwatch token create makes one)")
        subscription = subscription or os.environ.get("PACKETWATCH_SUBSCRIPTION")
        if not subscription:
            raise CLIError("no subscription: give --subscription or set PACKETWATCH_SUBSCRIPTION")
        return cls(ArmClient(os.environ.get("PACKETWATCH_API_URL", DEFAULT_API), token), subscription)

    def answer(self, response_of: Callable[..., httpx.Response], *args: Any) -> Any:
        """The JSON of a call's answer; az's errors for a failed one."""
        try:
            response: httpx.Response = response_of(*args)
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach the PacketWatch API at {self.client.base_url}: {exc or type(exc).__name__}"
                           f" (set PACKETWATCH_API_URL)") from None
        try:
            return checked(response)
        except ApiError as exc:
            raise (ResourceNotFoundError if exc.status == 404 else CLIError)(f"({exc.code}) {exc.message}") from None
