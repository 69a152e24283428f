"""Named crash points for fault tests (as etcd's gofail or TiKV's fail-rs): a process
started with PACKETWATCH_FAILPOINTS=name[,name…] kills itself with SIGKILL when it
reaches one of those points, so a test can stop it between two steps exactly.
Unset, as in production, a point costs one lookup in an empty set."""

from __future__ import annotations

import os
import signal

ARMED = frozenset(name.strip() for name in os.environ.get("PACKETWATCH_FAILPOINTS", "").split(",") if name.strip())


def failpoint(name: str) -> None:
    if name in ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
