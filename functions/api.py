"""The front door as one ASGI app: the same code runs in the Functions host and under uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from functions.agent_routes import build_agent_router
from functions.alert_routes import build_alert_router
from functions.alert_service import AlertService
from functions.arm_errors import install_error_handlers
from functions.arm_routes import build_router
from functions.docs_routes import add_docs
from functions.storage_routes import build_storage_router
from functions.signin_routes import build_signin_router
from functions.watcher_routes import build_watcher_router
from functions.capture_service import CaptureService
from functions.queue_intake import QueueIntake
from functions.download_routes import build_download_router
from functions.health_routes import build_health_router
from functions.metrics import RegistryCollector, RequestMetrics, build_metrics_router
from shared.access import load_access_config
from shared.alert_config import load_alert_config
from shared.broker import make_celery
from shared.config import Settings
from shared.registry import Registry
from shared.storage_accounts import load_storage_accounts
from shared.version import VERSION


CONSOLE = Path(__file__).parent / "console"
log = logging.getLogger("packetwatch.api")


def create_app(settings: Settings | None = None, queue_intake: bool = False) -> FastAPI:
    """The API; with `queue_intake`, it also takes capture submissions off the broker while it runs."""
    settings = settings or Settings()
    registry = Registry.from_url(settings.database_url)
    accounts = load_storage_accounts(settings.storage_config)
    service = CaptureService(registry, make_celery("packetwatch-api", settings.broker_url), settings.capture_root,
                             timedelta(seconds=settings.start_deadline_seconds), settings.require_known_agent,
                             accounts, timedelta(seconds=settings.upload_retry_seconds))

    access = load_access_config(settings.access_config)
    intake = QueueIntake(settings.broker_url, service, access) if queue_intake else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if intake is not None:
            intake.start()
        yield
        if intake is not None:
            await run_in_threadpool(intake.stop)
        await run_in_threadpool(service.close)

    app = FastAPI(title="PacketWatch", version=VERSION, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.registry = registry
    app.state.service = service
    install_error_handlers(app)
    if not access.tokens and access.entra is None:
        log.warning("no API token is configured (PACKETWATCH_ACCESS_CONFIG=%s): every ARM call will be refused; "
                    "`packetwatch token create` makes one", settings.access_config or "unset")
    access.entra_tokens()  # Entra ID's signing keys read before the first request, then kept fresh
    app.include_router(build_router(service, access))
    app.include_router(build_watcher_router(registry, access))
    alert_config = load_alert_config(settings.alert_config, settings.capture_root, settings.function_key_list)
    if not alert_config.function_keys:
        log.warning("no function key is configured (PACKETWATCH_FUNCTION_KEYS, PACKETWATCH_ALERT_CONFIG): "
                    "every alert will be refused")
    app.include_router(build_alert_router(AlertService(alert_config, service)))
    app.include_router(build_agent_router(registry, access, settings.heartbeat_seconds))
    app.include_router(build_download_router(registry, accounts, access))
    app.include_router(build_storage_router(accounts, access))
    app.include_router(build_signin_router(access))

    app.include_router(build_health_router(registry, settings.broker_url))
    app.include_router(build_metrics_router(RegistryCollector(registry, settings.broker_url,
                                                              settings.heartbeat_seconds)))
    app.add_middleware(RequestMetrics)
    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")
    add_docs(app)

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(CONSOLE / "index.html")

    return app
