"""The control-plane worker: applies agents' status events and heartbeats to the registry.

Agents hold no database credentials; this worker is the only writer of their news.
"""

from __future__ import annotations

import logging
import socket

from shared.broker import CONTROL_QUEUE, durable_queue, make_celery
from shared.messages import Heartbeat, StatusEvent, TaskName
from shared.registry import Registry

log = logging.getLogger("packetwatch.control")


def build_control_app(broker_url: str, registry: Registry):  # type: ignore[no-untyped-def]
    app = make_celery("packetwatch-control", broker_url)
    app.conf.task_queues = [durable_queue(CONTROL_QUEUE)]

    @app.task(name=TaskName.STATUS.value)
    def status(payload: dict) -> None:
        event = StatusEvent.model_validate(payload)
        applied = registry.apply(event)
        log.info("status %s %s %s", event.capture_id, event.status.value, "applied" if applied else "ignored")

    @app.task(name=TaskName.HEARTBEAT.value)
    def heartbeat(payload: dict) -> None:
        registry.record_heartbeat(Heartbeat.model_validate(payload))

    return app


def run_control(broker_url: str, database_url: str, concurrency: int = 2) -> None:
    app = build_control_app(broker_url, Registry.from_url(database_url))
    app.worker_main([
        "worker", "--pool", "threads", "--concurrency", str(concurrency), "--queues", CONTROL_QUEUE,
        "--hostname", f"control@{socket.gethostname()}", "--without-gossip", "--without-mingle",
        "--loglevel", "INFO",
    ])
