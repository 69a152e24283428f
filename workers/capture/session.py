"""One capture session: move packets from a source to a sink until the first limit, a
stop or a failed write. It is given both (it builds neither), so it runs as well on a
test's source as on a live interface."""

from __future__ import annotations

from collections.abc import Callable
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from shared.arm import PacketCaptureParameters, StopReason
from shared.capture_modes import RingSettings
from workers.capture.interfaces import PacketSink, PacketSource
from workers.capture.pcap_sink import CaptureWriteError

POLL_SECONDS = 0.2
# After a stop, one more wait for what the kernel still holds (its read timeout is 0.1 s).
LAST_WAIT_SECONDS = 0.15


@dataclass
class StopSignal:
    """Set from another thread to end a session; carries why."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: StopReason = StopReason.MANUALLY_STOPPED

    def set(self, reason: StopReason) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


@dataclass(frozen=True)
class SessionLimits:
    snaplen: int
    byte_limit: int
    seconds: float

    @classmethod
    def of(cls, params: PacketCaptureParameters) -> "SessionLimits":
        """ARM's limits; 0 for bytes or time means the largest value ARM allows. A continuous
        capture runs for its captureSettings' session time; its files bound its bytes."""
        ring = RingSettings.of(params)
        return cls(snaplen=params.bytes_to_capture_per_packet, byte_limit=params.bytes_limit,
                   seconds=ring.seconds if ring else params.seconds_limit)


@dataclass(frozen=True)
class SessionOutcome:
    started: datetime
    ended: datetime
    stop_reason: StopReason | None  # None when writing the file failed (see write_error)
    packets: int
    file_bytes: int
    kernel_drops: int
    path: Path
    write_error: OSError | None = None


def run_session(source: PacketSource, sink: PacketSink, limits: SessionLimits, stop: StopSignal,
                on_running: Callable[[datetime], None] | None = None) -> SessionOutcome:
    """Feed `sink` from `source` until a limit, a stop or a failed write; both are closed after."""
    reason: StopReason | None = None
    try:
        started = datetime.now(timezone.utc)
        deadline = time.monotonic() + limits.seconds
        if on_running is not None:
            on_running(started)
        try:
            reason = _pump(source, sink, stop, deadline)
            if reason is not StopReason.BYTES_EXCEEDED:
                source.wait(LAST_WAIT_SECONDS)
                sink.drain(source)
                if sink.full:
                    reason = StopReason.BYTES_EXCEEDED if reason is StopReason.TIME_EXCEEDED else reason
        except CaptureWriteError:
            reason = None
        ended = datetime.now(timezone.utc)
        drops = source.counters().dropped
    finally:
        sink.close()
        source.close()
    if sink.error is not None:
        reason = None
    return SessionOutcome(started, ended, reason, sink.packets, sink.file_bytes, drops, sink.path, sink.error)
def _pump(source: PacketSource, sink: PacketSink, stop: StopSignal, deadline: float) -> StopReason:
    while True:
        if stop.event.is_set():
            return stop.reason
        if sink.full:
            return StopReason.BYTES_EXCEEDED
        left = deadline - time.monotonic()
        if left <= 0:
            return StopReason.TIME_EXCEEDED
        source.wait(min(POLL_SECONDS, left))
        sink.drain(source)
