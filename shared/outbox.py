"""The transactional outbox: messages written in the same transaction as the registry
change they announce, and removed once the broker has confirmed them.

A sender first takes a lease on a message (the process that writes it holds one from the
start), so two senders never send it at once. An API process that dies between recording
a capture and publishing its request leaves the request here with a lease that runs out;
then a client that re-sends, or the control worker's relay, takes it and sends it."""

from __future__ import annotations

from sqlalchemy import Row
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from shared.messages import Outgoing, TaskName
from shared.registry_schema import captures, outbox

# Long enough for a publish with its confirm and retries; then another sender may take it.
LEASE = timedelta(seconds=10)


@dataclass(frozen=True)
class PendingMessage:
    id: str
    capture_key: str
    run_id: str
    message: Outgoing


def _pending(row: Row) -> PendingMessage:
    return PendingMessage(row.id, row.capture_key, row.run_id,
                          Outgoing(task=TaskName(row.task), queue=row.queue, payload=json.loads(row.payload)))


def add(conn: Connection, capture_key: str, run_id: str, message: Outgoing, at: datetime) -> PendingMessage:
    """Record a message, leased to the caller, who sends it next."""
    pending = PendingMessage(uuid.uuid4().hex, capture_key, run_id, message)
    conn.execute(insert(outbox), {"id": pending.id, "capture_key": capture_key, "run_id": run_id,
                                  "task": message.task.value, "queue": message.queue,
                                  "payload": json.dumps(message.payload), "created_at": at, "lease_until": at + LEASE})
    return pending


def lease(conn: Connection, messages: list[PendingMessage], now: datetime) -> list[PendingMessage]:
    """The messages whose lease had run out, now leased to the caller."""
    return [message for message in messages
            if conn.execute(update(outbox).where(outbox.c.id == message.id, outbox.c.lease_until <= now)
                            .values(lease_until=now + LEASE)).rowcount == 1]


def for_capture(conn: Connection, capture_key: str, run_id: str | None = None,
                task: TaskName | None = None) -> list[PendingMessage]:
    query = select(outbox).where(outbox.c.capture_key == capture_key)
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    if task is not None:
        query = query.where(outbox.c.task == task.value)
    return [_pending(row) for row in conn.execute(query.order_by(outbox.c.created_at)).all()]


# The messages of a capture, and of its instances' parts (a scale set's), whose sender's lease
# has run out: built once, as every alert answered "already running" asks it.
_ABANDONED_OF = select(outbox).where(
    or_(outbox.c.capture_key == bindparam("key"),
        outbox.c.capture_key.in_(select(captures.c.key).where(captures.c.watcher_key == bindparam("key")))),
    outbox.c.lease_until <= bindparam("now")).order_by(outbox.c.created_at)


def abandoned_of(conn: Connection, capture_key: str, now: datetime) -> list[PendingMessage]:
    return [_pending(row) for row in conn.execute(_ABANDONED_OF, {"key": capture_key, "now": now}).all()]


def lease_expired(conn: Connection, now: datetime, limit: int) -> list[PendingMessage]:
    """Messages their sender left (its lease ran out), now leased to the caller."""
    query = select(outbox).where(outbox.c.lease_until <= now).order_by(outbox.c.created_at).limit(limit)
    return lease(conn, [_pending(row) for row in conn.execute(query).all()], now)


def remove(conn: Connection, message_id: str) -> None:
    conn.execute(delete(outbox).where(outbox.c.id == message_id))


def cancel(conn: Connection, capture_key: str, task: TaskName, run_id: str | None = None) -> None:
    """Drop unsent messages of one kind for a capture (e.g. the request of a capture deleted or
    stopped before it was ever sent)."""
    query = delete(outbox).where(outbox.c.capture_key == capture_key, outbox.c.task == task.value)
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    conn.execute(query)
