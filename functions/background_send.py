"""Publishing recorded messages off the request thread, for callers that answer as soon as
a message is recorded (the alert webhook): the outbox already holds it, in the transaction
that recorded its capture, so the answer need not wait for the broker's confirm.

One thread takes whatever has been recorded since its last batch, publishes it with one wait
for the confirms (`PipelinedPublisher`) and takes the confirmed messages out of the outbox in
one transaction; a storm of alerts becomes a few batches. What the broker does not confirm is
tried again while half the message's lease is left; after that, or if this process dies, it
stays in the outbox and the control worker's relay sends it once the lease has run out. So a
message is never sent by two senders at once, and never lost."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from celery import Celery

from shared.errors import BrokerUnavailable
from shared.outbox import LEASE, PendingMessage
from shared.pipelined_publish import PipelinedPublisher
from shared.retry import backoff

BATCH = 500  # messages at most per batch
log = logging.getLogger("packetwatch.api")


class BackgroundSender:
    def __init__(self, app: Celery, sent: Callable[[list[PendingMessage]], None]) -> None:
        self._publisher = PipelinedPublisher(app)
        self._sent = sent
        self._jobs: queue.SimpleQueue[tuple[list[PendingMessage], float] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="background-send", daemon=True)
        self._thread.start()

    def submit(self, pending: list[PendingMessage]) -> None:
        if pending:
            self._jobs.put((pending, time.monotonic() + LEASE.total_seconds() / 2))

    def close(self) -> None:
        """Send what was submitted (while the broker takes it), then stop; the relay sends the rest."""
        self._jobs.put(None)
        self._thread.join(LEASE.total_seconds() / 2)
        self._publisher.close()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            pending, send_by = list(job[0]), job[1]
            while len(pending) < BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._send(pending, send_by)
                    return
                pending += job[0]
                send_by = min(send_by, job[1])
            self._send(pending, send_by)

    def _send(self, pending: list[PendingMessage], send_by: float) -> None:
        left = list(pending)
        if time.monotonic() > send_by:
            log.warning("%d recorded message(s) waited too long here; the control worker's relay sends them",
                        len(left))
            return
        try:
            for attempt in backoff(first=0.2, maximum=2.0, within=send_by - time.monotonic(),
                                   transient=lambda exc: isinstance(exc, BrokerUnavailable), log=log,
                                   what=f"publishing {len(left)} recorded message(s)"):
                with attempt:
                    self._publish(left)
        except BrokerUnavailable as exc:
            log.warning("the broker did not confirm %d recorded message(s) (%s); the control worker's relay "
                        "sends them", len(left), str(exc).splitlines()[0])
        except Exception:
            log.exception("publishing %d recorded message(s) failed; the control worker's relay sends them",
                          len(left))

    def _publish(self, left: list[PendingMessage]) -> None:
        """Publish, record what was confirmed and keep in `left` what was not (then BrokerUnavailable)."""
        published = self._publisher.publish([message.message for message in left])
        self._sent([message for message, ok in zip(left, published.confirmed) if ok])
        left[:] = [message for message, ok in zip(left, published.confirmed) if not ok]
        if left:
            raise BrokerUnavailable(published.failure or "no confirm")
