"""The front door's second transport: capture submissions from the broker (the contract is
shared/submissions.py). Each API process (`packetwatch serve`) consumes the intake queue on
a thread of its own, beside HTTP.

A submission goes the PUT's own way (CaptureService.put: one parse, the same value checks,
the same outbox) under the same access rules (shared/access.py: a bearer token in the
message's `authorization` header, or a broker user RabbitMQ vouches for by `user_id`). Then:

- with `reply_to`, one answer (SubmissionAnswer) to that queue with the message's
  `correlation_id`; a Celery task message gets it in the shape of Celery's rpc:// result
  backend, so `AsyncResult.get()` returns it;
- a refused submission is copied to packetwatch.submissions.rejected with why in its headers
  (its `authorization` header left out), then acknowledged: never dropped silently, never
  tried again;
- what could succeed later (the broker refuses the agent's request, the registry is away)
  is put back after a pause; after DELIVERY_LIMIT deliveries the broker dead-letters it.

The message is acknowledged only once the capture is recorded and the answer confirmed: an
intake that dies in between gets the message again, and the capture's name makes the
second PUT the same capture (answered 200).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Message
from kombu.mixins import ConsumerProducerMixin
from prometheus_client import Counter
from sqlalchemy.exc import OperationalError

from functions.capture_service import CaptureService
from shared.access import AccessConfig, Action, Grant, authorize, bearer_grant
from shared.errors import AuthenticationFailed, PacketWatchError, ServiceUnavailable
from shared.registry import Created
from shared.submissions import (
    REASON_HEADERS, REJECTED_EXCHANGE, REJECTED_QUEUE, SUBMIT_QUEUE, SubmissionAnswer, submission_of,
)

log = logging.getLogger("packetwatch.intake")
PREFETCH = 8
RETRY_PAUSE_SECONDS = 1.0
SUBMISSIONS = Counter("packetwatch_queue_submissions_total", "Capture submissions taken off the intake queue, by "
                      "outcome (created, existing, refused, retried)", ["outcome"])


class QueueIntake(ConsumerProducerMixin):
    def __init__(self, broker_url: str, service: CaptureService, access: AccessConfig) -> None:
        self.connection = Connection(broker_url, transport_options={"confirm_publish": True}, heartbeat=30)
        self.service = service
        self.access = access
        self.thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="queue-intake", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking submissions; the one in hand is finished (or, if not, delivered again)."""
        self.should_stop = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.connection.release()

    def get_consumers(self, consumer: Callable[..., Consumer], channel: Any) -> list[Consumer]:
        REJECTED_QUEUE(channel).declare()
        return [consumer(queues=[SUBMIT_QUEUE], on_message=self.on_message, prefetch_count=PREFETCH,
                         no_ack=False)]

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("queue intake: broker connection lost (%s); trying again in %.0f s", exc, interval)

    # -- one submission ----------------------------------------------------------------------
    def on_message(self, message: Message) -> None:
        properties, headers = message.properties, message.headers or {}
        celery_task = headers.get("task")
        message_id = properties.get("message_id") or (headers.get("id") if celery_task else None)
        try:
            created = self._submit(message.body, celery_task, properties, headers)
        except (ServiceUnavailable, OperationalError) as exc:  # may succeed later: delivered again
            SUBMISSIONS.labels("retried").inc()
            log.warning("submission %s: %s; it is delivered again in %.0f s", message_id, exc, RETRY_PAUSE_SECONDS)
            time.sleep(RETRY_PAUSE_SECONDS)
            message.requeue()
            return
        except Exception as exc:  # noqa: BLE001 - every refusal is answered and kept, a bug too
            refusal = exc if isinstance(exc, PacketWatchError) else PacketWatchError(f"internal error: {exc}")
            if not isinstance(exc, PacketWatchError):
                log.exception("submission %s could not be handled", message_id)
            SUBMISSIONS.labels("refused").inc()
            log.info("submission %s refused: %s %s", message_id, refusal.code, refusal.message)
            self._dead_letter(message, refusal)
            self._answer(message, SubmissionAnswer(status=refusal.status, message_id=message_id,
                                                   error=refusal.to_arm()["error"]), celery_task)
            message.ack()
            return
        SUBMISSIONS.labels("created" if created.created else "existing").inc()
        self._answer(message, SubmissionAnswer(status=201 if created.created else 200, message_id=message_id,
                                               capture=self.service.result(created.capture).to_arm()), celery_task)
        message.ack()

    def _submit(self, body: bytes, celery_task: str | None, properties: dict, headers: dict) -> Created:
        submission = submission_of(body, celery_task)
        capture = submission.capture
        authorize(self._grant(properties, headers), Action.WRITE, capture.arm_id)
        return self.service.put(capture, submission.put_body(), source="queue")

    def _grant(self, properties: dict, headers: dict) -> Grant:
        """Who submits: a bearer token in the `authorization` header, else the broker user
        RabbitMQ vouched for in `user_id`."""
        if headers.get("authorization"):
            return bearer_grant(self.access, str(headers["authorization"]))
        user = properties.get("user_id")
        found = self.access.grant_for_broker_user(user) if user else None
        if found is None:
            raise AuthenticationFailed("a submission needs a bearer token (header authorization: Bearer …) or a "
                                       "user_id the broker vouches for and the access file grants"
                                       + (f" (broker user {user!r} is not granted)" if user else ""))
        return found

    # -- what goes back ----------------------------------------------------------------------
    def _answer(self, message: Message, answer: SubmissionAnswer, celery_task: str | None) -> None:
        reply_to = message.properties.get("reply_to")
        if not reply_to:
            return
        correlation_id = message.properties.get("correlation_id") or message.headers.get("id")
        body: dict[str, Any] = answer.to_arm()
        if celery_task is not None:  # as Celery's rpc:// backend stores a result
            body = {"task_id": correlation_id, "status": "SUCCESS", "result": body, "traceback": None,
                    "children": [], "date_done": datetime.now(timezone.utc).isoformat()}
        self.producer.publish(body, exchange="", routing_key=reply_to, correlation_id=correlation_id,
                              serializer="json", delivery_mode=2, retry=True)

    def _dead_letter(self, message: Message, refusal: PacketWatchError) -> None:
        kept = {key: value for key, value in (message.headers or {}).items() if key.lower() != "authorization"}
        reason: dict[str, Any] = dict(zip(REASON_HEADERS, (refusal.status, refusal.code, refusal.message[:1000])))
        properties = {key: message.properties[key] for key in ("message_id", "correlation_id", "reply_to", "app_id")
                      if message.properties.get(key)}
        if message.properties.get("user_id"):  # the broker checks a user_id against our own connection's user
            reason["x-packetwatch-user-id"] = message.properties["user_id"]
        self.producer.publish(message.body, exchange=REJECTED_EXCHANGE, routing_key="", headers={**kept, **reason},
                              content_type=message.content_type or "application/octet-stream",
                              content_encoding=message.content_encoding or "binary", delivery_mode=2,
                              declare=[REJECTED_QUEUE], retry=True, **properties)
