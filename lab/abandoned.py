"""What an API process that died leaves in the outbox: capture requests recorded but never
confirmed, their sender's lease long over (for the relay's tests and benchmark)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared import outbox
from shared.messages import Outgoing, TaskName
from shared.registry import Registry


def leave_requests(registry: Registry, count: int, queues: list[str]) -> None:
    """`count` capture requests ({"index": n}) spread over `queues` in turn, oldest first."""
    long_ago = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with registry.engine.begin() as conn:
        for index in range(count):
            outbox.add(conn, f"capture-{index}", "run", Outgoing(task=TaskName.CAPTURE, queue=queues[index % len(queues)],
                                                                 payload={"index": index}),
                       long_ago + timedelta(milliseconds=index))
