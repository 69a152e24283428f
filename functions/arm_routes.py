"""The ARM packet-capture API: paths and status codes as in the 2026-01-01 spec."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from functions.access import requirement
from functions.capture_service import CaptureService
from functions.metrics import CLIENT_HEADER, capture_source
from functions.deps import ApiVersion, CapturePath, WatcherPath, api_version
from functions.request_limits import read_json
from functions.openapi_bodies import json_body
from shared.access import AccessConfig, Action
from shared.arm import PacketCapture
from shared.capture_listing import MAX_TOP, PageRequest, list_page, stream_list
from shared.resource_ids import CaptureId

WATCHER = ("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network"
           "/networkWatchers/{networkWatcherName}")
CAPTURES = WATCHER + "/packetCaptures"
ONE = CAPTURES + "/{packetCaptureName}"
MAX_BODY_BYTES = 1024 * 1024


def _operation_url(request: Request, capture: CaptureId, kind: str, api_version: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}{capture.watcher_path}/{kind}/{uuid.uuid4()}?api-version={api_version}"


def build_router(service: CaptureService, access: AccessConfig) -> APIRouter:
    router = APIRouter()
    registry = service.registry
    def may(action: Action) -> list:  # the caller's roles grant `action` where the path points
        return [Depends(requirement(access, action)), Depends(api_version)]

    @router.put(ONE, status_code=201, dependencies=may(Action.WRITE),
                openapi_extra=json_body(PacketCapture, "the packet capture to create"))
    async def create(capture: CapturePath, request: Request, version: ApiVersion) -> JSONResponse:
        body = await read_json(request, MAX_BODY_BYTES)
        record = service.put(capture, body, capture_source(request.headers.get(CLIENT_HEADER))).capture
        headers = {"Azure-AsyncOperation": _operation_url(request, capture, "operations", version)}
        return JSONResponse(service.result(record).to_arm(), status_code=201, headers=headers)

    @router.get(ONE, dependencies=may(Action.READ))
    def get(capture: CapturePath) -> JSONResponse:
        return JSONResponse(service.result(registry.get(capture)).to_arm())

    @router.get(CAPTURES, dependencies=may(Action.READ))
    def list_captures(watcher: WatcherPath, request: Request,
                      top: Annotated[str | None, Query(alias="$top", description=f"opt-in paging: at most this many "
                                                       f"captures (1-{MAX_TOP}), with a nextLink to the rest")] = None,
                      skip_token: Annotated[str | None, Query(alias="$skipToken", description="from a nextLink")] = None,
                      expand: Annotated[str | None, Query(alias="$expand", description="'status': each capture's "
                                                          "status beside it, as queryStatus gives it")] = None,
                      ) -> Response:
        """Every capture of the watcher (Azure's SDK follows no nextLink here), or with `$top` a
        page of them and a nextLink to the next."""
        wanted = PageRequest.parse(top, skip_token, expand)
        if wanted.everything:
            return StreamingResponse(stream_list(registry.engine, watcher, service.planned_path),
                                     media_type="application/json")
        page = list_page(registry.engine, watcher, wanted, service.planned_path,
                         lambda arm_id: service.query_status(registry.get(CaptureId.parse(arm_id))).to_arm())
        link = "" if page.skip_token is None else \
            ',"nextLink":' + json.dumps(str(request.url.include_query_params(**{"$skipToken": page.skip_token})))
        return Response("".join(('{"value":[', ",".join(page.items), "]", link, "}")).encode(),
                        media_type="application/json")

    @router.post(ONE + "/stop", dependencies=may(Action.STOP))
    def stop(capture: CapturePath) -> Response:
        service.stop(registry.get(capture))
        return JSONResponse({}, status_code=200)

    @router.post(ONE + "/queryStatus", dependencies=may(Action.QUERY_STATUS))
    def query_status(capture: CapturePath) -> JSONResponse:
        return JSONResponse(service.query_status(registry.get(capture)).to_arm())

    @router.delete(ONE, dependencies=may(Action.DELETE))
    def delete(capture: CapturePath, request: Request, version: ApiVersion) -> Response:
        record = registry.find(capture)
        if record is None:
            return Response(status_code=204)
        service.stop(record)
        registry.delete(capture)
        return Response(status_code=202,
                        headers={"Location": _operation_url(request, capture, "operationResults", version)})

    @router.get(WATCHER + "/operations/{operationId}", dependencies=may(Action.READ))
    def operation_status(watcher: WatcherPath, operationId: str) -> JSONResponse:
        return JSONResponse({"status": "Succeeded"})

    @router.get(WATCHER + "/operationResults/{operationId}", dependencies=may(Action.READ))
    def operation_result(watcher: WatcherPath, operationId: str) -> Response:
        return Response(status_code=204)

    return router
