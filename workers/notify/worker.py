"""The notifier: delivers completion and failure events as CloudEvents 1.0 JSON to the
configured webhooks, signed as Standard Webhooks specifies (webhook-id, webhook-timestamp,
webhook-signature: HMAC-SHA256 over "id.timestamp.body"), so a receiver can verify them
and refuse replays; retried with backoff, each attempt signed afresh.

It runs as a worker of its own, so a slow or failing endpoint never delays a capture, an
upload or the registry. Each event goes to each webhook until one 2xx answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, field_validator
from standardwebhooks import Webhook as Signer

from shared.broker import NOTIFY_QUEUE, Handler, bound_queue, make_celery, node_name, register_tasks, run_worker
from shared.config_files import load_model
from shared.messages import Notification, TaskName
from shared.probes import broker_state, serve_probes
from shared.retry import backoff

log = logging.getLogger("packetwatch.notify")
SOURCE = "/packetwatch"
SECRET_PREFIX = "whsec_"
DELIVERIES = Counter("packetwatch_notifications_total", "Events handed to a webhook, by result (delivered, "
                     "failed: retries spent or refused)", ["result"])
FAILED_ATTEMPTS = Counter("packetwatch_notification_failed_attempts_total", "POSTs a webhook did not take "
                          "(each retry counts)")
DELIVERY_SECONDS = Histogram("packetwatch_notification_duration_seconds", "Time to deliver one event to one "
                             "webhook, retries included", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    # A Standard Webhooks secret (whsec_ and 24 to 64 random bytes in base64, as
    # `packetwatch notify secret` makes), or, as earlier releases took, any text of 16
    # characters or more, whose UTF-8 bytes are then the key.
    secret: str = Field(min_length=16)

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: str) -> str:
        if value.startswith(SECRET_PREFIX):
            try:
                key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not 24 <= len(key) <= 64:
                raise ValueError("a whsec_ secret is 24 to 64 random bytes in base64 after whsec_ "
                                 "(`packetwatch notify secret` makes one)")
        return value

    @property
    def key(self) -> bytes:
        if self.secret.startswith(SECRET_PREFIX):
            return base64.b64decode(self.secret.removeprefix(SECRET_PREFIX))
        return self.secret.encode()


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


def signed_headers(webhook: Webhook, event: Notification, body: bytes, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers: the event id (the same on every attempt), the time of this
    attempt and the signature over both and the body."""
    return {"Content-Type": "application/cloudevents+json", "webhook-id": event.id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Signer(webhook.key).sign(event.id, at, body.decode())}


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class Undelivered(Exception):
    def __init__(self, reason: str, transient: bool) -> None:
        self.transient = transient
        super().__init__(reason)


def deliver(event: Notification, webhook: Webhook, config: NotifyConfig,
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST until a 2xx answer; retry 5xx, 408, 429 and network errors with backoff."""
    body = cloud_event(event)

    def attempt() -> None:
        headers = signed_headers(webhook, event, body, datetime.now(timezone.utc))
        try:
            answer = httpx.post(webhook.url, content=body, headers=headers, timeout=config.timeout_seconds)
        except httpx.HTTPError as exc:
            FAILED_ATTEMPTS.inc()
            raise Undelivered(type(exc).__name__, transient=True) from None
        if not answer.is_success:
            FAILED_ATTEMPTS.inc()
            code = answer.status_code
            raise Undelivered(f"HTTP {code}", transient=code >= 500 or code in (408, 429))

    retrying = backoff(first=config.first_delay_seconds, maximum=config.max_delay_seconds, attempts=config.attempts,
                       transient=lambda exc: isinstance(exc, Undelivered) and exc.transient, log=log,
                       what=f"event {event.id} to {webhook.url}", sleep=sleep)
    where = {"capture_id": event.subject, "event_id": event.id}
    try:
        with DELIVERY_SECONDS.time():
            retrying(attempt)
    except Undelivered as exc:
        DELIVERIES.labels("failed").inc()
        log.error("capture %s: %s did not take event %s (%s): %s", event.subject, webhook.url, event.id, event.type,
                  exc, extra=where)
        return False
    DELIVERIES.labels("delivered").inc()
    log.info("capture %s: event %s (%s) delivered to %s", event.subject, event.id, event.type, webhook.url,
             extra=where)
    return True


def run_notifier(broker_url: str, config: NotifyConfig, probes: tuple[str, int], concurrency: int = 4) -> None:
    """Deliver events until shut down, serving /metrics, /healthz, /readyz on `probes` (host, port)."""
    app = make_celery("packetwatch-notify", broker_url)
    # Bound to an exchange of its own name (not Celery's default, named after the control queue):
    # its broker user configures nothing of the control queue's.
    app.conf.task_queues = [bound_queue(NOTIFY_QUEUE, NOTIFY_QUEUE, "direct")]
    serve_probes(*probes, lambda: {"broker": broker_state(broker_url)})

    def notify(event: Notification) -> None:
        for webhook in config.webhooks:
            deliver(event, webhook, config)

    register_tasks(app, [Handler(TaskName.NOTIFY, notify)])

    run_worker(app, NOTIFY_QUEUE, node_name("notify"), concurrency)
