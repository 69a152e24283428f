"""POST /api/alerts: the webhook monitoring systems call when an alert fires or resolves."""

from __future__ import annotations

import asyncio
import hmac
import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from functions.alert_service import AlertService
from functions.arm_errors import ArmError
from functions.dispatch import BrokerUnavailable
from shared.alert_payloads import parse_alert
from shared.errors import InvalidField

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 64
HANDLERS = 4


def key_is_valid(given: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    if not given or not keys:
        return False
    results = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]
    return any(results)


def _depth(value: object, limit: int) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > limit:
            return depth
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
    return depth


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ArmError(413, "PayloadTooLarge", f"alert payloads are limited to {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ArmError(413, "PayloadTooLarge", f"alert payloads are limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def build_alert_router(service: AlertService) -> APIRouter:
    router = APIRouter()
    # A few alerts handled at once keeps a storm fast: more threads only fight over the GIL
    # and the database; the rest wait their turn in the event loop, which costs nothing.
    handling = asyncio.Semaphore(HANDLERS)

    @router.post("/api/alerts")
    async def alerts(request: Request, code: str | None = Query(default=None)) -> JSONResponse:
        if not key_is_valid(request.headers.get("x-functions-key") or code, service.config.function_keys):
            raise ArmError(401, "Unauthorized", "a valid function key is required (?code= or x-functions-key)")
        raw = await _read_limited(request)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidField("body", "(not JSON)", "the alert payload must be a JSON object") from None
        if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise InvalidField("body", "(nested too deep)", f"nests deeper than {MAX_JSON_DEPTH} levels")
        notices = parse_alert(body)
        try:
            async with handling:
                outcome = await run_in_threadpool(service.handle, notices)
        except BrokerUnavailable as exc:
            raise ArmError(503, "ServiceUnavailable", f"the message broker is unavailable: {exc}",
                           headers={"Retry-After": "5"}) from None
        return JSONResponse(outcome.to_json(), status_code=202 if outcome.started else 200)

    return router
