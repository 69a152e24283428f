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
from dataclasses import dataclass
from pathlib import Path

from shared.bpf import MAX_SNAPLEN
from shared.errors import InvalidField
from workers.capture.interfaces import PacketSource
from workers.capture.pcap_format import FILE_HEADER_BYTES, RECORD_HEADER_BYTES, timed_records
from workers.capture.pcap_sink import CaptureWriteError
from workers.capture.ring_sink import ClosedFile, RingLayout, RingSink

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


class LookBackRing:
    """Runs on a thread of its own (`run`) until `stop` is set. Its spool is a rolling
    RingSink (ring_sink.py), the continuous capture's own rotation; this adds the time bound
    and hands out windows."""

    def __init__(self, settings: LookBackSettings, source: PacketSource) -> None:
        self.settings = settings
        self.source = source
        self.lock = threading.Lock()
        self.ring: RingSink | None = None
        self.closed_at: dict[Path, float] = {}  # wall time each closed file was closed; its packets are older
        self.opened = 0  # spool files opened by earlier rings (one ring per start after a write failure)
        self.dropped_earlier = 0
        settings.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in settings.folder.glob("ring_*.pcap"):  # a previous run's spool: its order is unknown
            stale.unlink(missing_ok=True)

    @property
    def dropped_files(self) -> int:
        """Files removed for space (the FILES bound) before their time was up."""
        return self.dropped_earlier + (self.ring.removed if self.ring is not None else 0)

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
        if self.ring is None:
            first = self.opened
            layout = RingLayout(self.settings.folder, lambda index: f"ring_{first + index:09d}.pcap",
                                self.settings.file_bytes, FILES, rolling=True)
            self.ring = RingSink(layout, self.source.linktype, self.source.snaplen, on_closed=self._closed)
        self.ring.drain(self.source)
        if self.ring.error is not None:  # a file's close failed: the ring is full and writes no more
            raise CaptureWriteError(self.ring.path, self.ring.error)

    def _closed(self, closed: ClosedFile) -> None:
        assert self.ring is not None
        kept = set(self.ring.kept)
        self.closed_at = {path: at for path, at in self.closed_at.items() if path in kept}
        self.closed_at[closed.path] = time.time()

    def _expire(self, now: float) -> None:
        assert self.ring is not None
        kept = self.ring.kept
        while kept and self.closed_at.get(kept[0], now) < now - self.settings.seconds:
            self.closed_at.pop(kept[0])
            kept.popleft().unlink(missing_ok=True)

    def _clear(self) -> None:
        with self.lock:
            if self.ring is not None:
                self.ring.close()
                self.opened += self.ring.closed_files
                self.dropped_earlier += self.ring.removed
                while self.ring.kept:
                    self.ring.kept.popleft().unlink(missing_ok=True)
                self.ring = None
            self.closed_at.clear()

    # -- what a capture takes from it ----------------------------------------------------
    def window(self, since: float) -> list[TimedRecord]:
        """Every packet the ring holds whose timestamp is `since` or later, oldest first,
        including everything its source had taken when this was called."""
        with self.lock:
            try:
                self._drain()
                if self.ring is not None and self.ring.current.dumper is not None:
                    self.ring.current.flush()
            except CaptureWriteError as exc:
                log.warning("look-back ring could not take its last packets: %s", exc)
            ring = self.ring
            if ring is None:
                return []
            # Open the files while the ring cannot remove them; read them after, unlocked.
            opened = []
            for path in ring.kept:
                if self.closed_at.get(path, since) < since:
                    continue
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                writing = ring.current.dumper is not None and ring.current.path == path
                opened.append((fd, ring.current.size if writing else None))
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
            kept = self.ring.kept if self.ring is not None else ()
            return sum(path.stat().st_size for path in kept if path.exists())
