"""PacketWatch's ARM routes as a client, in two layers:

- `ArmRoutes`: each route once, its answer as it came (the tests of the API's answers read
  their status codes and bodies through it), and the waits on a capture's status.
- `ArmClient`: the typed client the CLI, the demo and the benches use. It takes the shared
  request model, returns parsed models (shared/arm.py, shared/api_views.py) and raises one
  error type, ApiError, for any refusal: the API's, or a body the API would refuse."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.api_views import AgentList, AgentView, FileLocation, NetworkWatcher, NetworkWatcherList
from shared.arm import (
    PacketCaptureListResult, PacketCaptureParameters, PacketCaptureQueryStatusResult, PacketCaptureResult,
)
from shared.capture_spec import parse_body
from shared.errors import PacketWatchError
from shared.resource_ids import CaptureId

API_VERSION = "2026-01-01"


class ApiError(Exception):
    """An answer of 400 or more, with ARM's error code and message (or the HTTP status and
    the start of the body, from something that is not PacketWatch)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{code}: {message}")

    @classmethod
    def refusing(cls, error: PacketWatchError) -> "ApiError":
        """The refusal the API answers `error` with (its status, ARM code and message)."""
        return cls(error.status, error.code, error.message)

    @classmethod
    def of(cls, response: httpx.Response) -> "ApiError":
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, f"HTTP {response.status_code}", response.text[:300])


def checked(response: httpx.Response) -> Any:
    """The JSON of a successful answer (None when it has no body); ApiError otherwise."""
    if response.status_code >= 400:
        raise ApiError.of(response)
    return response.json() if response.content else None


@dataclass
class ArmRoutes:
    """Each route once, its answer as it came; the waits read a capture's status."""

    base_url: str
    token: str
    api_version: str = API_VERSION

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}?api-version={self.api_version}"

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", "X-PacketWatch-Client": "cli"}
        return httpx.request(method, self._url(path), headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]

    def create(self, capture: CaptureId, properties: dict) -> httpx.Response:
        return self._call("PUT", capture.arm_id, json={"properties": properties})

    def get(self, capture: CaptureId) -> httpx.Response:
        return self._call("GET", capture.arm_id)

    def list(self, capture: CaptureId) -> httpx.Response:
        return self._call("GET", capture.watcher_path + "/packetCaptures")

    def stop(self, capture: CaptureId) -> httpx.Response:
        return self._call("POST", capture.arm_id + "/stop")

    def query_status(self, capture: CaptureId) -> httpx.Response:
        return self._call("POST", capture.arm_id + "/queryStatus")

    def status(self, capture: CaptureId) -> dict:
        return checked(self.query_status(capture))

    def delete(self, capture: CaptureId) -> httpx.Response:
        return self._call("DELETE", capture.arm_id)

    def download_url(self, capture: CaptureId) -> httpx.Response:
        return self._call("GET", capture.arm_id + "/downloadUrl")

    def agents(self) -> httpx.Response:
        return self._call("GET", "/packetwatch/agents")

    def watchers(self, subscription: str) -> httpx.Response:
        return self._call("GET", f"/subscriptions/{subscription}/providers/Microsoft.Network/networkWatchers")

    def resource(self, arm_id: str) -> httpx.Response:
        return self._call("GET", arm_id)

    def _poll(self, capture: CaptureId, done: Callable[[dict], object], timeout: float, interval: float,
              what: str) -> dict:
        """The capture's status once `done(status)` holds; TimeoutError saying what it did not do."""
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status(capture)
            if done(status):
                return status
            time.sleep(interval)
        raise TimeoutError(f"{capture.name} {what} in {timeout}s; last status {status}")

    def wait_for(self, capture: CaptureId, *statuses: str, timeout: float = 30.0) -> dict:
        return self._poll(capture, lambda status: status.get("packetCaptureStatus") in statuses, timeout, 0.1,
                          f"did not reach {statuses}")

    def wait_read(self, capture: CaptureId, timeout: float = 30.0) -> dict:
        """The status of an ended capture once its files are read (the agent reports its end as
        soon as the file is closed; protocols, top talkers and SHA-256 follow)."""
        return self._poll(capture, lambda status: "protocols" in status.get("packetWatchSummary", {}), timeout, 0.1,
                          "did not have its files read")

    def wait_stored(self, capture: CaptureId, timeout: float = 60.0) -> str:
        """The blob URL of a capture to a storage account, once its file is there."""
        self._poll(capture, lambda status: status.get("packetWatchStored"), timeout, 0.2, "was not stored")
        return checked(self.get(capture))["properties"]["storageLocation"]["storagePath"]


def capture_parameters(properties: dict[str, Any]) -> PacketCaptureParameters:
    """The request model of a PUT's properties as the CLI shapes them; ApiError naming every
    field the API would refuse for its shape (the API judges the values)."""
    try:
        return parse_body({"properties": properties}).properties
    except PacketWatchError as exc:
        raise ApiError.refusing(exc) from None


class ArmClient:
    """The typed client of PacketWatch's ARM routes."""

    def __init__(self, base_url: str, token: str, api_version: str = API_VERSION) -> None:
        self.routes = ArmRoutes(base_url, token, api_version)

    @property
    def base_url(self) -> str:
        return self.routes.base_url

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters) -> PacketCaptureResult:
        return PacketCaptureResult.model_validate(checked(self.routes.create(capture, parameters.to_arm())))

    def get(self, capture: CaptureId) -> PacketCaptureResult:
        return PacketCaptureResult.model_validate(checked(self.routes.get(capture)))

    def list(self, watcher_of: CaptureId) -> builtins.list[PacketCaptureResult]:
        """Every capture of the watcher `watcher_of` is in."""
        return PacketCaptureListResult.model_validate(checked(self.routes.list(watcher_of))).value

    def stop(self, capture: CaptureId) -> None:
        checked(self.routes.stop(capture))

    def delete(self, capture: CaptureId) -> None:
        checked(self.routes.delete(capture))

    def query_status(self, capture: CaptureId) -> PacketCaptureQueryStatusResult:
        return PacketCaptureQueryStatusResult.model_validate(checked(self.routes.query_status(capture)))

    def download_url(self, capture: CaptureId) -> FileLocation:
        return FileLocation.model_validate(checked(self.routes.download_url(capture)))

    def agents(self) -> builtins.list[AgentView]:
        return AgentList.model_validate(checked(self.routes.agents())).value

    def watchers(self, subscription: str) -> builtins.list[NetworkWatcher]:
        return NetworkWatcherList.model_validate(checked(self.routes.watchers(subscription))).value

    def watcher(self, arm_id: str) -> NetworkWatcher:
        return NetworkWatcher.model_validate(checked(self.routes.resource(arm_id)))

    def wait_for(self, capture: CaptureId, *statuses: str, timeout: float = 30.0) -> PacketCaptureQueryStatusResult:
        return PacketCaptureQueryStatusResult.model_validate(self.routes.wait_for(capture, *statuses,
                                                                                  timeout=timeout))

    def wait_read(self, capture: CaptureId, timeout: float = 30.0) -> PacketCaptureQueryStatusResult:
        return PacketCaptureQueryStatusResult.model_validate(self.routes.wait_read(capture, timeout))

    def wait_stored(self, capture: CaptureId, timeout: float = 60.0) -> str:
        return self.routes.wait_stored(capture, timeout)
