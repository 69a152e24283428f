"""The ARM packet-capture API: paths and status codes as in the 2026-01-01 spec."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from functions.access import requirement
from functions.arm_errors import ArmError
from functions.capture_service import CaptureService
from functions.request_limits import read_json
from functions.openapi_bodies import json_body
from shared.access import AccessConfig, Role
from shared.arm import PacketCapture, PacketCaptureListResult
from shared.capture_spec import parse_body
from shared.resource_ids import CaptureId, validate_name

WATCHER = ("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network"
           "/networkWatchers/{networkWatcherName}")
CAPTURES = WATCHER + "/packetCaptures"
ONE = CAPTURES + "/{packetCaptureName}"
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
MAX_BODY_BYTES = 1024 * 1024

ApiVersion = Annotated[str | None, Query(alias="api-version")]


def check_api_version(api_version: str | None) -> str:
    if api_version is None:
        raise ArmError(400, "MissingApiVersionParameter", "The api-version query parameter is required.",
                       "api-version")
    if not API_VERSION.fullmatch(api_version):
        raise ArmError(400, "InvalidApiVersionParameter", f"api-version {api_version!r} is not a valid version.",
                       "api-version")
    return api_version


def capture_id_from_path(sub: str, rg: str, nw: str, name: str) -> CaptureId:
    validate_name("packetCaptureName", name)
    return CaptureId.parse(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"
                           f"/networkWatchers/{nw}/packetCaptures/{name}", "packetCaptureName")


def _operation_url(request: Request, capture: CaptureId, kind: str, api_version: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}{capture.watcher_path}/{kind}/{uuid.uuid4()}?api-version={api_version}"


def build_router(service: CaptureService, access: AccessConfig) -> APIRouter:
    router = APIRouter()
    registry = service.registry
    reader = [Depends(requirement(access, Role.READER))]
    contributor = [Depends(requirement(access, Role.CONTRIBUTOR))]

    @router.put(ONE, status_code=201, dependencies=contributor,
                openapi_extra=json_body(PacketCapture, "the packet capture to create"))
    async def create(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                     packetCaptureName: str, request: Request, api_version: ApiVersion = None) -> JSONResponse:
        version = check_api_version(api_version)
        capture = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, packetCaptureName)
        resource = parse_body(await read_json(request, MAX_BODY_BYTES))
        record, _ = service.create(capture, resource.properties)
        headers = {"Azure-AsyncOperation": _operation_url(request, capture, "operations", version)}
        return JSONResponse(record.to_result().to_arm(), status_code=201, headers=headers)

    @router.get(ONE, dependencies=reader)
    def get(subscriptionId: str, resourceGroupName: str, networkWatcherName: str, packetCaptureName: str,
            api_version: ApiVersion = None) -> JSONResponse:
        check_api_version(api_version)
        capture = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, packetCaptureName)
        return JSONResponse(registry.get(capture).to_result().to_arm())

    @router.get(CAPTURES, dependencies=reader)
    def list_captures(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                      api_version: ApiVersion = None) -> JSONResponse:
        check_api_version(api_version)
        watcher = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, "x").watcher_path
        result = PacketCaptureListResult(value=[record.to_result() for record in registry.list(watcher)])
        return JSONResponse(result.to_arm())

    @router.post(ONE + "/stop", dependencies=contributor)
    def stop(subscriptionId: str, resourceGroupName: str, networkWatcherName: str, packetCaptureName: str,
             api_version: ApiVersion = None) -> Response:
        check_api_version(api_version)
        capture = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, packetCaptureName)
        service.stop(registry.get(capture))
        return JSONResponse({}, status_code=200)

    @router.post(ONE + "/queryStatus", dependencies=reader)
    def query_status(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                     packetCaptureName: str, api_version: ApiVersion = None) -> JSONResponse:
        check_api_version(api_version)
        capture = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, packetCaptureName)
        return JSONResponse(registry.get(capture).to_status().to_arm())

    @router.delete(ONE, dependencies=contributor)
    def delete(subscriptionId: str, resourceGroupName: str, networkWatcherName: str, packetCaptureName: str,
               request: Request, api_version: ApiVersion = None) -> Response:
        version = check_api_version(api_version)
        capture = capture_id_from_path(subscriptionId, resourceGroupName, networkWatcherName, packetCaptureName)
        record = registry.find(capture)
        if record is None:
            return Response(status_code=204)
        service.stop(record)
        registry.delete(capture)
        return Response(status_code=202,
                        headers={"Location": _operation_url(request, capture, "operationResults", version)})

    @router.get(WATCHER + "/operations/{operationId}", dependencies=reader)
    def operation_status(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                         operationId: str, api_version: ApiVersion = None) -> JSONResponse:
        check_api_version(api_version)
        return JSONResponse({"status": "Succeeded"})

    @router.get(WATCHER + "/operationResults/{operationId}", dependencies=reader)
    def operation_result(subscriptionId: str, resourceGroupName: str, networkWatcherName: str,
                         operationId: str, api_version: ApiVersion = None) -> Response:
        check_api_version(api_version)
        return Response(status_code=204)

    return router
