"""The broker side both front door and workers share: queue names and a Celery app set
for durability (quorum queues, persistent messages, publisher confirms, late acks)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from celery.signals import worker_ready
from kombu import Connection, Exchange, Queue
from pydantic import BaseModel

from shared.broker_identity import ORIGIN_HEADER, user_of, verified_sender
from shared.broker_names import CONTROL_QUEUE, NOTIFY_QUEUE, agent_queue_name
from shared.logs import stdout_into_log
from shared.messages import TASK_PAYLOADS, TaskName, body_of, task_of

__all__ = ["CONTROL_QUEUE", "NOTIFY_QUEUE", "agent_queue_name"]  # the queue names, importable from here too

QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}
RETRY_SECONDS, RETRIES = 0.5, 60  # a message that cannot be applied yet: tried for half a minute
log = logging.getLogger("packetwatch.broker")


def durable_queue(name: str) -> Queue:
    return Queue(name, routing_key=name, durable=True, queue_arguments=QUEUE_ARGUMENTS)


def bound_queue(name: str, exchange: str, kind: str, passive: bool = False) -> Queue:
    """A durable queue also bound to `exchange` under its own name; `passive`: the exchange is
    only checked for, never declared (an agent may not configure it)."""
    return Queue(name, Exchange(exchange, kind, durable=True, passive=passive), routing_key=name, durable=True,
                 queue_arguments=QUEUE_ARGUMENTS)


def make_celery(name: str, broker_url: str) -> Celery:
    app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_delivery_mode="persistent",
        task_create_missing_queues=True,
        task_create_missing_queue_type="quorum",
        task_default_queue=CONTROL_QUEUE,
        task_default_queue_type="quorum",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True},
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        # Task events, so Flower and `celery events` see every task of agents and workers.
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


def run_worker(app: Celery, queue: str, hostname: str, concurrency: int) -> None:
    """Consume one queue until shut down, as every PacketWatch worker does: on `concurrency`
    threads, or on the consuming thread itself when it is 1 (so a deep prefetch is acked
    safely: one thread on the connection). Celery's banner is left out (every line goes
    through logging, so JSON logs stay JSON)."""
    log.info("worker %s consuming %s (%d threads, task events on)", hostname, queue, concurrency)
    stdout_into_log()
    pool = ["--pool", "solo"] if concurrency == 1 else ["--pool", "threads", "--concurrency", str(concurrency)]
    ready = threading.Event()
    worker_ready.connect(lambda **_: ready.set(), weak=False)
    try:
        app.worker_main([
            "--quiet", "worker", *pool, "--queues", queue,
            "--hostname", hostname, "--without-gossip", "--without-mingle", "--task-events",
            "--loglevel", logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        ])
    except SystemExit as exit:
        if ready.is_set():
            raise
        code = exit.code
    else:
        code = 0
    if not ready.is_set():  # Celery ends a worker that never started with status 0: its supervisor must see it
        log.error("worker %s could not start consuming %s (Celery's exit %s)", hostname, queue, code)
        raise SystemExit(1)


def node_name(role: str) -> str:
    """A worker's Celery node name, its own on this host: two control workers (or notifiers)
    side by side must not share one (the second could not lock its control queue, `pidbox`)."""
    return f"{role}@{socket.gethostname()}-{os.getpid()}"


def publish(app: Celery, task: str, payload: dict, queue: str, via: str | None = None,
            user_id: str | None = None) -> None:
    """Send one task message to a durable queue, waiting for the broker's confirm, stamped with
    this process's broker user (or `user_id`, for a relay the broker lets impersonate). `via`
    an exchange that routes to the queue by its name: nothing is declared, so a publisher
    that may not configure the queue (an agent) can still send to it."""
    stamp = user_id or user_of(app.conf.broker_url)
    if via is None:
        app.send_task(task, args=[payload], queue=durable_queue(queue), routing_key=queue, user_id=stamp)
    else:
        app.send_task(task, args=[payload], exchange=via, routing_key=queue, declare=[], user_id=stamp)


def send(app: Celery, message: BaseModel, queue: str, via: str | None = None) -> None:
    """Send a payload model as its task (TASK_PAYLOADS), waiting for the broker's confirm."""
    publish(app, task_of(message).value, body_of(message), queue, via)


@dataclass(frozen=True)
class Handler:
    """What a worker does with one task: `apply` takes the validated payload model."""

    task: TaskName
    apply: Callable[[Any], object]
    # `apply` answers False while the message cannot be applied yet (what it follows is still
    # in another thread's hands): it is tried again shortly, for up to half a minute.
    until_applied: bool = False
    events: bool = True  # task events for Flower; off for the control queue's heartbeats
    # Who may send it: given the payload and its sender as the broker vouches for it (None when
    # nobody does), False drops the message. None: whoever the broker lets publish to the queue.
    may_send: Callable[[Any, str | None], bool] | None = None


def sender_of(task: Task, own_user: str) -> str | None:
    """The verified sender of the message `task` runs (see shared/broker_identity.py)."""
    properties = task.request.properties or {}
    return verified_sender(properties.get("user_id"), (task.request.headers or {}).get(ORIGIN_HEADER), own_user)


def register_tasks(app: Celery, handlers: list[Handler], count: Callable[[TaskName], None] | None = None) -> None:
    """Register each handler as its task: the payload validated against the task's model
    (TASK_PAYLOADS), counted, its sender checked (Handler.may_send), then applied."""
    own_user = user_of(app.conf.broker_url)
    for handler in handlers:
        model = TASK_PAYLOADS[handler.task]

        def run(task: Task, payload: dict, handler: Handler = handler, model: type[BaseModel] = model) -> None:
            if count is not None:
                count(handler.task)
            message = model.model_validate(payload)
            sender = sender_of(task, own_user)
            if handler.may_send is not None and not handler.may_send(message, sender):
                return
            if handler.apply(message) is False and handler.until_applied:
                # Sent again by this process: its own user_id, and the origin it verified.
                raise task.retry(countdown=RETRY_SECONDS, user_id=own_user, headers={ORIGIN_HEADER: sender or ""})

        app.task(name=handler.task.value, bind=True, send_events=handler.events,
                 max_retries=RETRIES if handler.until_applied else 0)(run)


def has_consumer(broker_url: str, queue: str) -> bool:
    """Whether some worker consumes `queue` now (False too when the queue does not exist)."""
    with Connection(broker_url, connect_timeout=2) as conn:
        try:
            channel = conn.channel()
            consumers = channel.queue_declare(queue, passive=True)[2]
            channel.close()
            return consumers > 0
        except Exception:
            return False
