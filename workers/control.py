"""The control-plane worker: applies agents' status events, upload results and heartbeats
to the registry, and hands completion and failure events to the notifier.

Agents hold no database credentials; this worker is the only writer of their news.
"""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import datetime, timezone

from celery import Celery

from shared.arm import PcStatus
from shared.broker import CONTROL_QUEUE, NOTIFY_QUEUE, durable_queue, make_celery, publish
from shared.messages import Heartbeat, Notification, StatusEvent, TaskName, UploadResult
from shared.registry import CaptureRecord, Registry
from shared.resource_ids import CaptureId

log = logging.getLogger("packetwatch.control")
COMPLETED = "com.packetwatch.capture.completed"
FAILED = "com.packetwatch.capture.failed"


def notification(record: CaptureRecord, kind: str) -> Notification:
    status = record.to_status().to_arm()
    data = {**status, "target": record.parameters.target, "storagePath": record.storage_path}
    return Notification(id=str(uuid.uuid4()), type=kind, subject=record.capture.arm_id,
                        time=datetime.now(timezone.utc), data=data)


class Control:
    def __init__(self, app: Celery, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    def notify(self, capture_id: str, kind: str) -> None:
        record = self.registry.find(CaptureId.parse(capture_id))
        if record is not None:
            publish(self.app, TaskName.NOTIFY.value, notification(record, kind).model_dump(mode="json"), NOTIFY_QUEUE)

    def status(self, event: StatusEvent) -> None:
        applied = self.registry.apply(event)
        log.info("status %s %s %s", event.capture_id, event.status.value, "applied" if applied else "ignored")
        if not applied:
            return
        if event.status is PcStatus.ERROR:
            self.notify(event.capture_id, FAILED)
        elif event.status is PcStatus.STOPPED:
            record = self.registry.find(CaptureId.parse(event.capture_id))
            if record is not None and not record.parameters.storage_location.storage_id:
                self.notify(event.capture_id, COMPLETED)

    def uploaded(self, result: UploadResult) -> None:
        if self.registry.apply_upload(result):
            self.notify(result.capture_id, COMPLETED if result.storage_path else FAILED)


def build_control_app(broker_url: str, registry: Registry) -> Celery:
    app = make_celery("packetwatch-control", broker_url)
    app.conf.task_queues = [durable_queue(CONTROL_QUEUE)]
    control = Control(app, registry)

    @app.task(name=TaskName.STATUS.value)
    def status(payload: dict) -> None:
        control.status(StatusEvent.model_validate(payload))

    @app.task(name=TaskName.UPLOADED.value)
    def uploaded(payload: dict) -> None:
        control.uploaded(UploadResult.model_validate(payload))

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
