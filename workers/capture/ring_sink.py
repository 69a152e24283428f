"""Where packets go in continuous capture: a sequence of pcap files, each cut before it would
pass its size, the records past the cut starting the next, so no packet is lost or written
twice at a seam (and packets go in at libpcap's speed, a batch at a time). Rolling (continuousCapture true): once `count` files exist the
oldest still on the VM is removed first, and the ring runs until its time limit or a stop.
Not rolling (false): the session ends when `count` files are full."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workers.capture.interfaces import PacketSource
from workers.capture.pcap_sink import CaptureWriteError, PcapFileSink


@dataclass(frozen=True)
class ClosedFile:
    index: int
    path: Path
    packets: int
    bytes: int


@dataclass(frozen=True)
class RingLayout:
    """Where file `index` (1, 2, …) goes, under which root, and how big each may be."""

    root: Path
    name_of: Callable[[int], str]
    file_bytes: int
    count: int
    rolling: bool


class RingSink:
    """A PacketSink (interfaces.py) over a ring of PcapFileSinks."""

    def __init__(self, layout: RingLayout, linktype: int, snaplen: int,
                 on_closed: Callable[[ClosedFile], object] = lambda closed: None,
                 on_opened: Callable[[Path, int], None] = lambda path, index: None) -> None:
        self.layout = layout
        self.linktype = linktype
        self.snaplen = snaplen
        self.on_closed = on_closed
        self.on_opened = on_opened
        self.closed_files = self.closed_packets = self.closed_bytes = 0  # totals of the files closed so far
        self.kept: deque[Path] = deque()  # files of this ring still on the VM, oldest first
        self.removed = 0
        self.full = False
        self.error: OSError | None = None
        self.current = self._open(1)

    # -- the PacketSink view: the ring as a whole --------------------------------------
    @property
    def path(self) -> Path:
        return self.current.path

    @property
    def packets(self) -> int:
        return self.closed_packets + (self.current.packets if self._open_now else 0)

    @property
    def file_bytes(self) -> int:
        return self.closed_bytes  # a file's bytes are known once it is closed

    @property
    def _open_now(self) -> bool:
        return self.current.dumper is not None

    def drain(self, source: PacketSource) -> int:
        moved = 0
        while not self.full:
            moved += self.current.drain(source)
            if not self.current.full:
                break
            self._rotate()
        return moved

    def progress(self) -> tuple[int, int]:
        packets, written = self.current.progress() if self._open_now else (0, 0)
        return packets + self.closed_packets, written + self.closed_bytes

    def take_records(self, records: bytes) -> bytes:
        rest = self.current.take_records(records)
        if rest:
            self.current.spilled = rest
            self._rotate()
        return b""

    def close(self) -> None:
        self._finish(self.current)

    # -- files --------------------------------------------------------------------------
    def _open(self, index: int) -> PcapFileSink:
        sink = PcapFileSink.create(self.layout.root, self.layout.name_of(index), self.linktype, self.snaplen,
                                   self.layout.file_bytes, spill=True)
        self.kept.append(sink.path)
        self.on_opened(sink.path, index)
        return sink

    def _rotate(self) -> None:
        """Close the full file and carry what it spilled into the next ones (several, if the
        files are small); a ring that does not roll is full once `count` files are."""
        carry = self.current.spilled
        while self.current.full:
            self._finish(self.current)
            if self.error is not None or (not self.layout.rolling and self.closed_files >= self.layout.count):
                self.full = True
                return
            if self.layout.rolling:
                while len(self.kept) >= self.layout.count:
                    self.kept.popleft().unlink(missing_ok=True)  # someone may have taken it already
                    self.removed += 1
            try:
                self.current = self._open(self.closed_files + 1)
            except CaptureWriteError as exc:  # the disk cannot take even the next file's header
                self.error = exc
                raise
            carry = self.current.take_records(carry)

    def _finish(self, sink: PcapFileSink) -> None:
        if sink.dumper is None:  # closed already
            return
        sink.close()
        self.error = self.error or sink.error
        self.closed_files += 1
        self.closed_packets += sink.packets
        self.closed_bytes += sink.file_bytes
        self.on_closed(ClosedFile(self.closed_files, sink.path, sink.packets, sink.file_bytes))
