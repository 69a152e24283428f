"""Look-back: an agent's standing, bounded ring of recent packets, so that a capture started
by an alert can also hold the packets from before the alert fired (DESIGN.md §9).

The ring reads its own source (a broad kernel filter, its own snap length) into a rolling
spool of small pcap files written at libpcap's speed, exactly as a continuous capture's
files are (spill mode: no packet lost or doubled at a file seam). It is bounded twice: at
most FILES files of `spool_bytes / FILES` bytes each, and no file kept whose packets are
all older than the window. Put the spool on a tmpfs to keep the ring in memory.

`window(since)` hands out the packets received since a time: the ring drains its source
first, so it holds everything the kernel has taken up to that call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from shared.bpf import MAX_SNAPLEN
from shared.errors import InvalidField
from workers.capture.interfaces import PacketSource
from workers.capture.pcap_format import FILE_HEADER_BYTES, RECORD_HEADER_BYTES, timed_records
from workers.capture.pcap_sink import CaptureWriteError, PcapFileSink

log = logging.getLogger("packetwatch.agent.look_back")
FILES = 16
POLL_SECONDS = 0.2
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class TimedRecord:
    """One packet as a pcap record holds it; `at` is its timestamp in seconds."""

    seconds: int
    micros: int
    length: int
    frame: bytes

    @property
    def at(self) -> float:
        return self.seconds + self.micros / 1e6


@dataclass(frozen=True)
class LookBackSettings:
    """An agent's look-back ring: how far back it reaches and how much it may hold."""

    seconds: int
    spool_bytes: int
    snaplen: int
    folder: Path

    def __post_init__(self) -> None:
        smallest = FILES * (FILE_HEADER_BYTES + RECORD_HEADER_BYTES + (self.snaplen or MAX_SNAPLEN))
        if self.spool_bytes < smallest:
            raise InvalidField("--look-back-bytes", str(self.spool_bytes),
                               f"must be at least {smallest} ({FILES} files of one packet at the snap length)")

    @property
    def file_bytes(self) -> int:
        return self.spool_bytes // FILES


@dataclass
class _SpoolFile:
    path: Path
    closed_at: float | None = None  # wall time; every packet in the file is older


class LookBackRing:
    """Runs on a thread of its own (`run`) until `stop` is set."""

    def __init__(self, settings: LookBackSettings, source: PacketSource) -> None:
        self.settings = settings
        self.source = source
        self.lock = threading.Lock()
        self.files: deque[_SpoolFile] = deque()
        self.opened = 0
        self.dropped_files = 0
        self.current: PcapFileSink | None = None
        settings.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in settings.folder.glob("ring_*.pcap"):  # a previous run's spool: its order is unknown
            stale.unlink(missing_ok=True)

    # -- the standing capture -----------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.source.wait(POLL_SECONDS)
                try:
                    with self.lock:
                        self._drain()
                        self._expire(time.time())
                except CaptureWriteError as exc:
                    log.error("look-back ring stopped writing (%s); its spool is cleared and it starts again "
                              "in %.0f s", exc, RETRY_SECONDS)
                    self._clear()
                    stop.wait(RETRY_SECONDS)
        finally:
            self._clear()
            self.source.close()

    def _drain(self) -> None:
        if self.current is None:
            self.current = self._open()
        while True:
            self.current.drain(self.source)
            if not self.current.full:
                return
            carry = self.current.spilled
            while self.current.full:
                self._close_current()
                self.current = self._open()
                carry = self.current.take_records(carry)

    def _open(self) -> PcapFileSink:
        while len(self.files) >= FILES:
            self.files.popleft().path.unlink(missing_ok=True)
            self.dropped_files += 1
        self.opened += 1
        sink = PcapFileSink.create(self.settings.folder, f"ring_{self.opened:09d}.pcap", self.source.linktype,
                                   self.source.snaplen, self.settings.file_bytes, spill=True)
        self.files.append(_SpoolFile(sink.path))
        return sink

    def _close_current(self) -> None:
        assert self.current is not None
        self.current.close()
        self.files[-1].closed_at = time.time()
        if self.current.error is not None:
            raise CaptureWriteError(self.current.path, self.current.error)
        self.current = None

    def _expire(self, now: float) -> None:
        while self.files and self.files[0].closed_at is not None \
                and self.files[0].closed_at < now - self.settings.seconds:
            self.files.popleft().path.unlink(missing_ok=True)

    def _clear(self) -> None:
        with self.lock:
            if self.current is not None:
                self.current.close()
                self.current = None
            while self.files:
                self.files.popleft().path.unlink(missing_ok=True)

    # -- what a capture takes from it ----------------------------------------------------
    def window(self, since: float) -> list[TimedRecord]:
        """Every packet the ring holds whose timestamp is `since` or later, oldest first,
        including everything its source had taken when this was called."""
        with self.lock:
            try:
                self._drain()
                if self.current is not None:
                    self.current.flush()
            except CaptureWriteError as exc:
                log.warning("look-back ring could not take its last packets: %s", exc)
            # Open the files while the ring cannot remove them; read them after, unlocked.
            opened = []
            for spool in self.files:
                if spool.closed_at is not None and spool.closed_at < since:
                    continue
                try:
                    fd = os.open(spool.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                end = self.current.size if self.current is not None and spool is self.files[-1] else None
                opened.append((fd, end))
        found: list[TimedRecord] = []
        for fd, end in opened:
            with os.fdopen(fd, "rb") as handle:
                found.extend(TimedRecord(*record) for record in timed_records(handle, end)
                             if record[0] + record[1] / 1e6 >= since)
        return found

    @property
    def held_bytes(self) -> int:
        """Bytes of spool in use (what the bound applies to)."""
        with self.lock:
            return sum(spool.path.stat().st_size for spool in self.files if spool.path.exists())
