"""/healthz: the process lives. /readyz: it can do its work — the registry and the broker
answer; 503 naming what is down otherwise (for load balancers, compose and systemd)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text

from shared.registry import Registry
from shared.version import VERSION

PROBE_SECONDS = 2.0


def _database(registry: Registry) -> str:
    try:
        with registry.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; say which
        return f"down: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _broker(broker_url: str) -> str:
    try:
        with Connection(broker_url, connect_timeout=PROBE_SECONDS) as conn:
            conn.ensure_connection(max_retries=0, timeout=PROBE_SECONDS)
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def build_health_router(registry: Registry, broker_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": VERSION}

    @router.get("/readyz")
    def ready() -> JSONResponse:
        checks = {"database": _database(registry), "broker": _broker(broker_url)}
        down = [name for name, state in checks.items() if state != "ok"]
        body = {"status": "ready" if not down else f"not ready: {', '.join(down)} down", "checks": checks,
                "version": VERSION}
        return JSONResponse(body, status_code=503 if down else 200)

    return router
