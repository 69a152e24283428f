"""POST /api/alerts: the webhook monitoring systems call when an alert fires or resolves."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from functions.alert_service import AlertService
from functions.metrics import ALERTS
from functions.openapi_bodies import json_body
from functions.request_limits import read_json
from shared.alert_payloads import parse_alert
from shared.errors import FunctionKeyRequired, PacketWatchError

MAX_BODY_BYTES = 256 * 1024
HANDLERS = 4


def key_is_valid(given: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    if not given or not keys:
        return False
    results = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]
    return any(results)


def build_alert_router(service: AlertService) -> APIRouter:
    router = APIRouter()
    # A few alerts handled at once keeps a storm fast: more threads only fight over the GIL
    # and the database; the rest wait their turn in the event loop, which costs nothing.
    handling = asyncio.Semaphore(HANDLERS)

    @router.post("/api/alerts", openapi_extra=json_body(description="an Azure Monitor, Alertmanager, Grafana "
                                                                    "or plain trigger alert payload"))
    async def alerts(request: Request, code: str | None = Query(default=None)) -> JSONResponse:
        if not key_is_valid(request.headers.get("x-functions-key") or code, service.config.function_keys):
            ALERTS.labels("unknown", "refused").inc()
            raise FunctionKeyRequired("a valid function key is required (?code= or x-functions-key)")
        try:
            notices = parse_alert(await read_json(request, MAX_BODY_BYTES))
        except PacketWatchError:
            ALERTS.labels("unknown", "refused").inc()
            raise
        async with handling:
            outcome = await run_in_threadpool(service.handle, notices)
        return JSONResponse(outcome.to_json(), status_code=202 if outcome.started else 200)

    return router
