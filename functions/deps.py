"""What every ARM route takes from the request, declared once as FastAPI dependencies:
the api-version (one of those whose packet-capture shape is served) and the resource the
path names."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from shared.arm import SUPPORTED_API_VERSIONS
from shared.errors import InvalidApiVersion, MissingApiVersion
from shared.resource_ids import CaptureId, validate_name


def api_version(version: Annotated[str | None, Query(alias="api-version")] = None) -> str:
    if version is None:
        raise MissingApiVersion("The api-version query parameter (?api-version) is required for all requests.",
                                "api-version")
    if version not in SUPPORTED_API_VERSIONS:
        raise InvalidApiVersion(
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(reversed(SUPPORTED_API_VERSIONS))}'.", "api-version")
    return version


def capture_path(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                 packetCaptureName: str) -> CaptureId:
    validate_name("packetCaptureName", packetCaptureName)
    return CaptureId.parse(f"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers"
                           f"/Microsoft.Network/networkWatchers/{networkWatcherName}/packetCaptures"
                           f"/{packetCaptureName}", "packetCaptureName")


def watcher_path(subscriptionId: str, resourceGroupName: str, networkWatcherName: str) -> str:
    return capture_path(subscriptionId, resourceGroupName, networkWatcherName, "x").watcher_path


ApiVersion = Annotated[str, Depends(api_version)]
CapturePath = Annotated[CaptureId, Depends(capture_path)]
WatcherPath = Annotated[str, Depends(watcher_path)]
