"""ARM's NetworkWatchers Get, List and ListAll (shared/watchers.py), and Subscriptions List:
how `-l/--location`, the SDK's network_watchers operations and the console find every
capture a token may see."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement, visibility
from functions.deps import api_version
from shared.access import AccessConfig, Action, Grant
from shared.errors import WatcherNotFound
from shared.registry import Registry
from shared.watchers import known_subscriptions, watchers

SUBSCRIPTION = "/subscriptions/{subscriptionId}"
PROVIDER = "/providers/Microsoft.Network/networkWatchers"
GROUP = SUBSCRIPTION + "/resourceGroups/{resourceGroupName}"


def build_watcher_router(registry: Registry, access: AccessConfig) -> APIRouter:
    router = APIRouter()
    reader = [Depends(requirement(access, Action.READ)), Depends(api_version)]
    lister = Depends(visibility(access))

    @router.get("/subscriptions")
    def subscriptions(grant: Grant = lister) -> JSONResponse:
        """ARM's Subscriptions List (any api-version: it is Microsoft.Resources'): those the
        caller holds a role in, by name, and for a role over all, every one the registry knows."""
        named = [scope.split("/")[2] for _, scope in grant.assignments() if scope != "/"]
        found = {s.lower(): s for s in named + [s for s in known_subscriptions(registry.engine)
                                                if grant.reaches(f"/subscriptions/{s}")]}
        return JSONResponse({"value": [{"id": f"/subscriptions/{s}", "subscriptionId": s, "displayName": s,
                                        "state": "Enabled"} for s in sorted(found.values(), key=str.lower)]})

    @router.get(SUBSCRIPTION + PROVIDER, dependencies=[Depends(api_version)])
    def list_all(subscriptionId: str, grant: Grant = lister) -> JSONResponse:
        return JSONResponse({"value": [w.to_arm() for w in watchers(registry.engine, subscriptionId)
                                       if grant.permits(Action.READ, w.arm_id)]})

    @router.get(GROUP + PROVIDER, dependencies=[Depends(api_version)])
    def list_in_group(subscriptionId: str, resourceGroupName: str, grant: Grant = lister) -> JSONResponse:
        return JSONResponse({"value": [w.to_arm() for w in watchers(registry.engine, subscriptionId)
                                       if w.resource_group.lower() == resourceGroupName.lower()
                                       and grant.permits(Action.READ, w.arm_id)]})

    @router.get(GROUP + PROVIDER + "/{networkWatcherName}", dependencies=reader)
    def get(subscriptionId: str, resourceGroupName: str, networkWatcherName: str) -> JSONResponse:
        for watcher in watchers(registry.engine, subscriptionId):
            if (watcher.resource_group.lower(), watcher.name.lower()) == \
                    (resourceGroupName.lower(), networkWatcherName.lower()):
                return JSONResponse(watcher.to_arm())
        raise WatcherNotFound(f"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
                              f"Microsoft.Network/networkWatchers/{networkWatcherName}")

    return router
