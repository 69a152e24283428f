"""One capture session: open the engine, feed the sink, stop on the first limit reached."""

from __future__ import annotations

import select
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from shared.arm import PacketCaptureParameters, StopReason
from workers.capture_engine import READ_TIMEOUT_MS, LiveCapture
from workers.pcap_sink import CaptureWriteError, PcapFileSink

POLL_SECONDS = 0.2


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
        """ARM's limits; 0 for bytes or time means the largest value ARM allows."""
        return cls(snaplen=params.bytes_to_capture_per_packet, byte_limit=params.bytes_limit,
                   seconds=params.seconds_limit)


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


def run_session(source: LiveCapture, sink: PcapFileSink, limits: SessionLimits, stop: StopSignal,
                on_running=None) -> SessionOutcome:  # type: ignore[no-untyped-def]
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
                select.select([source.fd], [], [], READ_TIMEOUT_MS * 1.5 / 1000)
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
def _pump(source: LiveCapture, sink: PcapFileSink, stop: StopSignal, deadline: float) -> StopReason:
    while True:
        if stop.event.is_set():
            return stop.reason
        if sink.full:
            return StopReason.BYTES_EXCEEDED
        left = deadline - time.monotonic()
        if left <= 0:
            return StopReason.TIME_EXCEEDED
        select.select([source.fd], [], [], min(POLL_SECONDS, left))
        sink.drain(source)
