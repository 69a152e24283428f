"""Sending what the outbox holds, for the whole API process: one thread takes every message
recorded since its last batch (alerts', ARM creates', stops', whatever came from which
request), publishes them with one wait for the broker's confirms (`PipelinedPublisher`),
and takes the confirmed ones out of the outbox in one transaction. A storm of alerts, or a
scale set's hundred instance requests, becomes a few batches.

A caller either waits for its messages (`send`: an ARM create answers 503 if the broker did
not take them) or does not (`submit`: an alert is answered once its capture is recorded).
What the broker does not confirm is tried again while half the message's lease is left;
after that, or if this process dies, it stays in the outbox and the control worker's relay
sends it once the lease has run out. So a message is never sent by two senders at once, and
never lost."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from celery import Celery

from shared.errors import BrokerUnavailable
from shared.failpoints import failpoint
from shared.outbox import LEASE, PendingMessage
from shared.pipelined_publish import CONFIRM_TIMEOUT, PipelinedPublisher
from shared.retry import backoff

BATCH = 500  # messages at most per batch
log = logging.getLogger("packetwatch.api")


@dataclass
class _Job:
    pending: list[PendingMessage]
    send_by: float  # monotonic time: after it, the message is the relay's to send
    done: Future = field(default_factory=Future)  # the messages not confirmed, and why


class OutboxSender:
    def __init__(self, app: Celery, sent: Callable[[list[PendingMessage]], None]) -> None:
        self._publisher = PipelinedPublisher(app)
        self._sent = sent
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._thread.start()

    def submit(self, pending: list[PendingMessage]) -> Future:
        job = _Job(pending, time.monotonic() + LEASE.total_seconds() / 2)
        if pending:
            self._jobs.put(job)
        else:
            job.done.set_result(([], None))
        return job.done

    def send(self, pending: list[PendingMessage]) -> None:
        """Publish and wait; BrokerUnavailable (with how many were confirmed) when some were not."""
        try:
            unconfirmed, failure = self.submit(pending).result(timeout=LEASE.total_seconds() + CONFIRM_TIMEOUT)
        except TimeoutError:
            unconfirmed, failure = pending, "the sender did not finish in time"
        if unconfirmed:
            raise BrokerUnavailable(failure or "no confirm", confirmed=len(pending) - len(unconfirmed))

    def close(self) -> None:
        """Send what was submitted (while the broker takes it), then stop; the relay sends the rest."""
        self._jobs.put(None)
        self._thread.join(LEASE.total_seconds() / 2)
        self._publisher.close()

    def _run(self) -> None:
        stopping = False
        while not stopping and (job := self._jobs.get()) is not None:
            jobs, messages = [job], len(job.pending)
            while messages < BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                messages += len(job.pending)
            self._send(jobs)

    def _send(self, jobs: list[_Job]) -> None:
        left = [message for job in jobs for message in job.pending]
        send_by = min(job.send_by for job in jobs)
        failure: str | None = "waited past half its lease"
        try:
            for attempt in backoff(first=0.2, maximum=2.0, within=send_by - time.monotonic(),
                                   transient=lambda exc: isinstance(exc, BrokerUnavailable), log=log,
                                   what=f"publishing {len(left)} recorded message(s)"):
                with attempt:
                    if time.monotonic() > send_by:
                        break
                    self._publish(left)
                    failure = None
        except BrokerUnavailable as exc:
            failure = str(exc).splitlines()[0]
        except Exception as exc:  # the database, say: the messages stay in the outbox either way
            log.exception("publishing %d recorded message(s) failed", len(left))
            failure = f"{type(exc).__name__}: {exc}"
        if left:
            log.warning("%d recorded message(s) not confirmed (%s); the control worker's relay sends them",
                        len(left), failure)
        unsent = {message.id for message in left}
        for job in jobs:
            job.done.set_result(([message for message in job.pending if message.id in unsent], failure))

    def _publish(self, left: list[PendingMessage]) -> None:
        """Publish, record what was confirmed and keep in `left` what was not (then BrokerUnavailable)."""
        published = self._publisher.publish([message.message for message in left])
        failpoint("capture.published")
        self._sent([message for message, ok in zip(left, published.confirmed) if ok])
        left[:] = [message for message, ok in zip(left, published.confirmed) if not ok]
        if left:
            raise BrokerUnavailable(published.failure or "no confirm")
