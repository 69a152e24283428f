"""/healthz: the process lives. /readyz: it can do its work — the registry and the broker
answer; 503 naming what is down otherwise (for load balancers, compose and systemd)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.probes import broker_state, database_state, readiness
from shared.registry import Registry
from shared.version import VERSION


def build_health_router(registry: Registry, broker_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": VERSION}

    @router.get("/readyz")
    def ready() -> JSONResponse:
        status, body = readiness({"database": database_state(registry.engine), "broker": broker_state(broker_url)})
        return JSONResponse(body, status_code=status)

    return router
