"""The notifier: delivers completion and failure events as CloudEvents 1.0 JSON to the
configured webhooks, signed with HMAC-SHA256, retried with backoff.

It runs as a worker of its own, so a slow or failing endpoint never delays a capture, an
upload or the registry. Each event goes to each webhook until one 2xx answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.broker import NOTIFY_QUEUE, durable_queue, make_celery
from shared.config_files import load_model
from shared.messages import Notification, TaskName

log = logging.getLogger("packetwatch.notify")
SIGNATURE_HEADER = "X-PacketWatch-Signature"
SOURCE = "/packetwatch"


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16)


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    webhooks: list[Webhook] = Field(default_factory=list)
    attempts: int = Field(default=12, ge=1, le=100)
    first_delay_seconds: float = Field(default=2.0, gt=0, alias="firstDelaySeconds")
    max_delay_seconds: float = Field(default=300.0, gt=0, alias="maxDelaySeconds")
    timeout_seconds: float = Field(default=10.0, gt=0, alias="timeoutSeconds")


def load_notify_config(path: str | None) -> NotifyConfig:
    return load_model(NotifyConfig, path, "PACKETWATCH_NOTIFY_CONFIG")


def cloud_event(event: Notification) -> bytes:
    body = {"specversion": "1.0", "id": event.id, "source": SOURCE, "type": event.type, "subject": event.subject,
            "time": event.time.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
            "data": event.data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(event: Notification, webhook: Webhook, config: NotifyConfig,
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST until a 2xx answer; retry 5xx, 408, 429 and network errors with backoff."""
    body = cloud_event(event)
    headers = {"Content-Type": "application/cloudevents+json", SIGNATURE_HEADER: signature(webhook.secret, body)}
    delay = config.first_delay_seconds
    for attempt in range(1, config.attempts + 1):
        try:
            answer = httpx.post(webhook.url, content=body, headers=headers, timeout=config.timeout_seconds)
            if answer.is_success:
                return True
            if answer.status_code < 500 and answer.status_code not in (408, 429):
                log.error("%s refused event %s: HTTP %d", webhook.url, event.id, answer.status_code)
                return False
            reason = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        log.warning("event %s to %s: %s (attempt %d)", event.id, webhook.url, reason, attempt)
        if attempt < config.attempts:
            sleep(delay)
            delay = min(delay * 2, config.max_delay_seconds)
    return False


def run_notifier(broker_url: str, config: NotifyConfig, concurrency: int = 4) -> None:
    app = make_celery("packetwatch-notify", broker_url)
    app.conf.task_queues = [durable_queue(NOTIFY_QUEUE)]

    @app.task(name=TaskName.NOTIFY.value)
    def notify(payload: dict) -> None:
        event = Notification.model_validate(payload)
        for webhook in config.webhooks:
            deliver(event, webhook, config)

    app.worker_main([
        "worker", "--pool", "threads", "--concurrency", str(concurrency), "--queues", NOTIFY_QUEUE,
        "--hostname", f"notify@{socket.gethostname()}", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ])
