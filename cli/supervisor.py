"""The processes `packetwatch up` starts, and how each is stopped so that it keeps what it
acknowledged: its own shutdown signal, a bounded wait, and a kill only after that wait,
logged. Stopping goes in stages, each finished before the next begins, so that in-flight
work ends or is handed back before what it depends on goes away (agents and their uploads
before storage)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    grace_seconds: float  # how long it may take to save its state after its stop signal
    stop_signal: int = signal.SIGTERM

    def running(self) -> bool:
        return self.process.poll() is None

    def signal_stop(self) -> bool:
        """Send the stop signal to its whole process group (its own children save too);
        False when it had exited already."""
        if not self.running():
            return False
        os.killpg(self.process.pid, self.stop_signal)
        return True

    def stop(self, say: Callable[[str], None]) -> None:
        """Stop it alone: its signal, then its grace period, then the kill."""
        if self.signal_stop():
            self.wait_stopped(time.monotonic() + self.grace_seconds, say)

    def wait_stopped(self, deadline: float, say: Callable[[str], None]) -> None:
        """Wait until it has exited, or kill it (and say so) once `deadline` has passed."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
            code = self.process.returncode
            say(f"{self.name} stopped" + ("" if code in (0, -self.stop_signal) else f" (exit status {code})"))
            return
        except subprocess.TimeoutExpired:
            pass
        say(f"{self.name} did not stop within {self.grace_seconds:.0f} s of "
            f"{signal.Signals(self.stop_signal).name}: killed (what it had not saved is lost)")
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


def stop_in_stages(stages: list[list[Child]], say: Callable[[str], None]) -> None:
    """Stop each stage's processes together, and each stage only once the one before it has
    stopped; a process is killed only past its own grace period."""
    for stage in stages:
        signalled = [child for child in stage if child.signal_stop()]
        started = time.monotonic()
        for child in signalled:
            child.wait_stopped(started + child.grace_seconds, say)
