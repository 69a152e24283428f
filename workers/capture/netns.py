"""Enter a network namespace on the calling thread only (setns), and come back.

A packet socket opened inside stays bound to that namespace after the thread returns, so
the agent can capture in a test VM's namespace while talking to the broker from its own.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

from workers.capture.failures import CaptureStartFailure

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(CaptureStartFailure, OSError):
    """The interface's namespace cannot be entered: capturing cannot begin (failures.py)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(f"network namespace {name!r}: {reason}")


def _setns(fd: int, name: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise NetnsError(name, os.strerror(ctypes.get_errno()))


@contextmanager
def inside(name: str | None) -> Iterator[None]:
    """Run the body in namespace `name` (a name under /run/netns); None stays put."""
    if name is None:
        yield
        return
    if "/" in name or name in {"", ".", ".."}:
        raise NetnsError(name, "is not a namespace name")
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        except OSError as exc:
            raise NetnsError(name, exc.strerror or "cannot be opened") from None
        try:
            _setns(target, name)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own, "own")
    finally:
        os.close(own)
