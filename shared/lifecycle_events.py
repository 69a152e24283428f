"""Capture lifecycle events on the broker, so automation can follow a capture without polling:
CloudEvents 1.0 in RabbitMQ's binary mode (the cloudevents SDK's binding: attributes as
`ce-` headers, the data as JSON in the body) on the headers exchange `packetwatch.events`.

Types: com.packetwatch.capture.created | running | stopped | error | stored. Bind a queue
with `x-match: all` on any of the headers (values lower-cased ARM IDs, as keys compare):

    ce-type            the event type
    ce-subscription    the subscription ID
    ce-vm              the target's resource ID: the VM (the instance, for a scale set
                       capture's part; the scale set, for a scale set capture's created)
    ce-capture         the capture's resource ID (a scale set capture's parts carry the
                       scale set capture's; ce-subject is the part's own)

The event `id` is the capture run and the type, so a consumer can drop the repeat of an
event published again (the control worker applies a report at least once).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from cloudevents.core.bindings import rabbitmq
from cloudevents.core.v1.event import CloudEvent
from celery import Celery
from kombu import Exchange

from shared.registry_records import CaptureRecord
from shared.resource_ids import CaptureId

EVENTS_EXCHANGE = Exchange("packetwatch.events", type="headers", durable=True)
SOURCE = "/packetwatch"
TYPE_PREFIX = "com.packetwatch.capture."
CREATED, RUNNING, STOPPED, ERROR, STORED = "created", "running", "stopped", "error", "stored"
KINDS = (CREATED, RUNNING, STOPPED, ERROR, STORED)


def event_data(record: CaptureRecord) -> dict[str, Any]:
    """What an event about a capture holds: its status as queryStatus gives it, its target and
    where it was stored (as the notifier's webhooks carry it)."""
    return {**record.to_status().to_arm(), "target": record.parameters.target, "storagePath": record.storage_path}


def event_message(kind: str, record: CaptureRecord, at: datetime | None = None) -> rabbitmq.RabbitMQMessage:
    """The event of `kind` for a capture (or a scale set instance's part) as a RabbitMQ message."""
    capture, target = record.capture, record.parameters.target
    whole = CaptureId(capture.subscription, capture.resource_group, capture.network_watcher, capture.name)
    event = CloudEvent(attributes={
        "id": f"{record.run_id}:{kind}", "source": SOURCE, "type": TYPE_PREFIX + kind, "subject": capture.arm_id,
        "time": at or datetime.now(timezone.utc), "datacontenttype": "application/json",
        "subscription": capture.subscription.lower(), "vm": target.lower(), "capture": whole.key},
        data=event_data(record))
    return rabbitmq.to_binary_event(event)


def binding(kind: str | None = None, subscription: str | None = None, vm: str | None = None,
            capture: str | None = None) -> dict[str, str]:
    """The binding arguments that select these events (every one given must match)."""
    chosen = {"ce-type": TYPE_PREFIX + kind if kind else None, "ce-subscription": subscription,
              "ce-vm": vm, "ce-capture": capture}
    return {"x-match": "all", **{key: value.lower() for key, value in chosen.items() if value}}


def publish_event(app: Celery, message: rabbitmq.RabbitMQMessage) -> None:
    """Publish one event, persistent, waiting for the broker's confirm (retried as a task is)."""
    with app.producer_or_acquire() as producer:
        producer.publish(message.body, exchange=EVENTS_EXCHANGE, routing_key="", headers=message.headers,
                         content_type=message.content_type or "application/json", content_encoding="utf-8",
                         delivery_mode=2, declare=[EVENTS_EXCHANGE], retry=True,
                         retry_policy=app.conf.task_publish_retry_policy)
