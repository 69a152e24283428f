"""The API's Prometheus metrics, served at /metrics: what it counts as it works (requests,
captures created by source, alerts by format and outcome) and what it reads from the
registry and the broker at each scrape (captures by status, agents online and offline, the
outbox, the control queue)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter
from fastapi.responses import Response
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.broker import CONTROL_QUEUE, QUEUE_ARGUMENTS
from shared.messages import SILENT_HEARTBEATS
from shared.registry import Registry
from shared.registry_stats import agents_by_state, captures_by_status, outbox_messages

REQUEST_SECONDS = Histogram(
    "packetwatch_http_request_duration_seconds", "API requests by API (arm, alerts, agents, other), route and status",
    ["api", "method", "route", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
CAPTURES_CREATED = Counter("packetwatch_captures_created_total", "Captures created, by who asked (api, console, "
                                                                 "cli, alert, queue)", ["source"])
ALERTS = Counter("packetwatch_alerts_total", "Alert notices by payload format and what came of them (started, "
                                             "deduplicated, stopped, skipped, refused)", ["format", "outcome"])
CLIENT_HEADER = "x-packetwatch-client"
NAMED_CLIENTS = {"console", "cli"}
BROKER_PROBE_SECONDS = 2.0


def capture_source(header: str | None) -> str:
    """Who created a capture through the ARM API: the console and CLI say so; anyone else is "api"."""
    return header if header in NAMED_CLIENTS else "api"


def _api(route: str) -> str:
    if route.startswith("/subscriptions/"):
        return "arm"
    if route.startswith("/api/alerts"):
        return "alerts"
    if route.startswith("/packetwatch/agents"):
        return "agents"
    return "other"


class RequestMetrics:
    """ASGI middleware: each request's time, labelled by its route's template (never its path,
    which holds names without bound)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(_api(route), scope["method"], route, str(status)).observe(
                time.perf_counter() - started)


class RegistryCollector(Collector):
    """Read at each scrape, so every API instance reports the same fleet-wide figures."""

    def __init__(self, registry: Registry, broker_url: str, heartbeat_seconds: float) -> None:
        self.registry = registry
        self.broker_url = broker_url
        self.silent_after = timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.registry.engine
        by_status = GaugeMetricFamily("packetwatch_captures", "Captures in the registry by status", labels=["status"])
        for status, count in captures_by_status(engine).items():
            by_status.add_metric([status], count)
        yield by_status
        fleet = GaugeMetricFamily("packetwatch_agents", "Agents by state (offline: silent for "
                                  f"{SILENT_HEARTBEATS} heartbeats)", labels=["state"])
        for state, count in agents_by_state(engine, datetime.now(timezone.utc) - self.silent_after).items():
            fleet.add_metric([state], count)
        yield fleet
        yield GaugeMetricFamily("packetwatch_outbox_messages", "Requests recorded but not yet confirmed by the broker",
                                value=outbox_messages(engine))
        waiting = self._control_queue_depth()
        if waiting is not None:
            yield GaugeMetricFamily("packetwatch_control_queue_messages", "Agents' news waiting for the control "
                                    "worker (its lag)", value=waiting)

    def _control_queue_depth(self) -> int | None:
        try:
            with Connection(self.broker_url, connect_timeout=BROKER_PROBE_SECONDS) as conn:
                channel = conn.channel()
                _, messages, _ = channel.queue_declare(CONTROL_QUEUE, passive=True, durable=True,
                                                       arguments=QUEUE_ARGUMENTS)
                return messages
        except Exception:  # the broker is away (readyz says so) or the queue not made yet
            return None


def build_metrics_router(collector: RegistryCollector) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(collector)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY) + generate_latest(fleet), media_type=CONTENT_TYPE_LATEST)

    return router
