"""Liveness kept cheap at fleet size: the control worker takes heartbeats as they come and
writes them to the registry together, a few times a second, one transaction and one upsert
per agent for its latest beat, instead of a transaction per message. A heartbeat is news
for at most a few hundred milliseconds before it is written; one lost with a crashed worker
is followed by the agent's next (liveness is judged over several heartbeat intervals)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from shared.messages import Heartbeat
from shared.registry import Registry

log = logging.getLogger("packetwatch.control")
FLUSH_SECONDS = 0.2
FLUSH_AT = 2000  # beats waiting: written at once, not at the next tick


class HeartbeatBatch:
    def __init__(self, registry: Registry, every: float = FLUSH_SECONDS, most: int = FLUSH_AT) -> None:
        self.registry = registry
        self.every = every
        self.most = most
        self._pending: dict[str, tuple[Heartbeat, datetime]] = {}
        self._lock = threading.Lock()
        self._due = threading.Event()

    def add(self, beat: Heartbeat, received_at: datetime) -> None:
        with self._lock:
            self._pending[beat.vm_id.lower()] = (beat, received_at)
            if len(self._pending) >= self.most:
                self._due.set()

    def flush(self) -> int:
        """Write what is waiting; on failure it waits again, behind any newer beat of the same agent."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        try:
            self.registry.record_heartbeats(list(taken.values()))
        except Exception:
            with self._lock:
                self._pending = {**taken, **self._pending}
            raise
        return len(taken)

    def run_forever(self) -> None:
        while True:
            self._due.wait(self.every)
            self._due.clear()
            try:
                self.flush()
            except Exception:
                log.warning("writing %d heartbeats failed; trying again", len(self._pending), exc_info=True)
