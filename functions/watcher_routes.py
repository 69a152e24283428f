"""ARM's NetworkWatchers Get, List and ListAll (shared/watchers.py): how `-l/--location`,
the SDK's network_watchers operations and the console find every capture a token may see."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from functions.deps import api_version
from shared.access import AccessConfig, Role
from shared.errors import WatcherNotFound
from shared.registry import Registry
from shared.watchers import watchers

SUBSCRIPTION = "/subscriptions/{subscriptionId}"
PROVIDER = "/providers/Microsoft.Network/networkWatchers"
GROUP = SUBSCRIPTION + "/resourceGroups/{resourceGroupName}"


def build_watcher_router(registry: Registry, access: AccessConfig) -> APIRouter:
    router = APIRouter()
    reader = [Depends(requirement(access, Role.READER)), Depends(api_version)]

    @router.get(SUBSCRIPTION + PROVIDER, dependencies=reader)
    def list_all(subscriptionId: str) -> JSONResponse:
        return JSONResponse({"value": [w.to_arm() for w in watchers(registry.engine, subscriptionId)]})

    @router.get(GROUP + PROVIDER, dependencies=reader)
    def list_in_group(subscriptionId: str, resourceGroupName: str) -> JSONResponse:
        return JSONResponse({"value": [w.to_arm() for w in watchers(registry.engine, subscriptionId)
                                       if w.resource_group.lower() == resourceGroupName.lower()]})

    @router.get(GROUP + PROVIDER + "/{networkWatcherName}", dependencies=reader)
    def get(subscriptionId: str, resourceGroupName: str, networkWatcherName: str) -> JSONResponse:
        for watcher in watchers(registry.engine, subscriptionId):
            if (watcher.resource_group.lower(), watcher.name.lower()) == \
                    (resourceGroupName.lower(), networkWatcherName.lower()):
                return JSONResponse(watcher.to_arm())
        raise WatcherNotFound(f"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
                              f"Microsoft.Network/networkWatchers/{networkWatcherName}")

    return router
