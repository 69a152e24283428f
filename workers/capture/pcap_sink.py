"""Where packets go: a libpcap file that never passes its byte budget, and that is never
left torn.

While there is room for a whole batch at the snap length, libpcap's own pcap_dump is the
callback, so no Python runs per packet; near the budget each packet is checked first.
The sink makes its own file (exclusively, see local_paths: no link followed, nothing
overwritten) from the source's link type and snap length alone, and writes it through a
checked stream: the first write that fails (disk full, quota, I/O error, file-size
limit) ends the capture, and the file is cut after its last whole record, so every count
reported is what the file holds.
"""

from __future__ import annotations

from typing import Any
import ctypes
import os
from pathlib import Path

from shared import libpcap
from workers.capture.checked_stream import CheckedStream
from workers.capture.interfaces import PacketSource
from workers.capture.pcap_format import (
    FILE_HEADER_BYTES, RECORD_HEADER_BYTES, cut_after_last_record, split_records, whole_records,
)
from workers.capture.local_paths import create_capture_file
from workers.capture.failures import LocalFileFailure

BATCH = 4096
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fwrite.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
_libc.fwrite.restype = ctypes.c_size_t


class CaptureWriteError(LocalFileFailure, OSError):
    """Writing the capture file failed; carries the OS reason."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        super().__init__(error.errno, f"writing capture file {path} failed: {error.strerror or error}")


class PcapFileSink:
    """A PacketSink (interfaces.py) writing one pcap file."""

    @classmethod
    def create(cls, root: Path, relative_path: str, linktype: int, snaplen: int, byte_limit: int,
               spill: bool = False) -> "PcapFileSink":
        """A new file at `relative_path` under `root`, its header written; if that fails, no
        file is left behind (CaptureWriteError, or CapturePathRefused for the path)."""
        fd, path = create_capture_file(root, relative_path)
        try:
            return cls(fd, path, linktype, snaplen, byte_limit, spill)
        except CaptureWriteError:
            raise  # the sink removed the file it could not start
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise

    def __init__(self, fd: int, path: Path, linktype: int, snaplen: int, byte_limit: int,
                 spill: bool = False) -> None:
        self.fd = fd
        # Spill mode (a ring's files): packets go in at C speed, whole batches, and what
        # passes the limit is cut off and kept in `spilled` for the next file.
        self.spill = spill
        self.spilled = b""
        self.path = path
        self.byte_limit = byte_limit
        self.record_max = RECORD_HEADER_BYTES + snaplen
        self.packets = 0
        self.file_bytes = 0
        self.full = False
        self.error: OSError | None = None
        self._whole = (0, 0)  # (bytes, packets) known to be on disk, at a record boundary
        self.stream = CheckedStream(fd)
        pcap = libpcap.lib()
        self._format = pcap.pcap_open_dead(linktype, snaplen)
        self.dumper = pcap.pcap_dump_fopen(self._format, self.stream.file)
        self._checked = libpcap.PcapHandler(self._write_if_room)
        try:
            self.flush()  # the file header now: a disk that cannot take even that fails at once
        except CaptureWriteError:
            self.close()
            raise

    @property
    def size(self) -> int:
        return libpcap.lib().pcap_dump_ftell(self.dumper)

    def _write_if_room(self, _user: Any, header: Any, data: Any) -> None:  # pcap_handler's (u_char*, pkthdr*, bytes*)
        if self.size + RECORD_HEADER_BYTES + header.contents.caplen > self.byte_limit:
            self.full = True
            return
        libpcap.lib().pcap_dump(self.dumper, header, ctypes.cast(data, ctypes.c_void_p))
        self.packets += 1

    def _check(self) -> None:
        if self.stream.error is not None:
            self.error = self.stream.error
            raise CaptureWriteError(self.path, self.stream.error)

    def flush(self) -> None:
        """Write what is buffered; CaptureWriteError when the file cannot take it."""
        libpcap.lib().pcap_dump_flush(self.dumper)
        self._check()
        self._whole = (self.stream.written, self.packets)

    def drain(self, source: PacketSource) -> int:
        """Move every packet the kernel has ready into the file; returns how many moved."""
        if self.spill:
            return self._drain_spilling(source)
        moved = 0
        while not self.full:
            room = (self.byte_limit - self.size) // self.record_max
            if room > 0:
                done = source.dispatch(min(room, BATCH), libpcap.dump_callback(), self.dumper)
                self.packets += done
            else:
                before = self.packets
                done = source.dispatch(1, self._checked, None)
                done = self.packets - before if done else 0
            self._check()
            moved += done
            if done == 0:
                break
        self.flush()
        return moved

    def _drain_spilling(self, source: PacketSource) -> int:
        """Whole batches through libpcap's own pcap_dump (no Python per packet), each sized
        from the records seen so far; a batch that passes the limit is cut after the last
        record that fits, and the records past it are kept for the next file."""
        moved = 0
        while not self.full:
            start_bytes, start_packets = self._whole
            average = (start_bytes - FILE_HEADER_BYTES) // start_packets if start_packets else RECORD_HEADER_BYTES
            count = min(BATCH, max(1, (self.byte_limit - start_bytes) // max(average, RECORD_HEADER_BYTES) + 1))
            done = source.dispatch(count, libpcap.dump_callback(), self.dumper)
            self.packets += done
            moved += done
            self.flush()
            if self.stream.written > self.byte_limit:
                self._cut(start_bytes, start_packets)
            if done == 0:
                break
        return moved

    def _cut(self, start_bytes: int, start_packets: int) -> None:
        with os.fdopen(os.dup(self.fd), "r+b") as handle:
            cut, count = whole_records(handle, start_bytes, self.byte_limit)
            handle.seek(cut)
            self.spilled = handle.read()
            handle.truncate(cut)
        self.packets = start_packets + count
        self._whole = (cut, self.packets)
        self.full = True

    def progress(self) -> tuple[int, int]:
        written, packets = self._whole
        return packets, written

    def take_records(self, records: bytes) -> bytes:
        """Write the whole records of `records` that fit (as a previous file spilled them);
        returns the rest, and is full if there is a rest."""
        fits, count = split_records(records, self.byte_limit - self.size)
        if fits:
            if _libc.fwrite(records, 1, fits, self.stream.file) != fits:
                self._check()
            self.packets += count
            self.flush()
        if fits < len(records):
            self.full = True
        return records[fits:]

    def close(self) -> None:
        """Flush, close and fsync; after a failed write, cut the file after its last whole
        record (or remove it if not even its header was written) and count what it holds."""
        if self.dumper:
            libpcap.lib().pcap_dump_close(self.dumper)  # its last flush goes through the checked stream
            libpcap.lib().pcap_close(self._format)
            self.dumper = None
            self.error = self.error or self.stream.error
            if self.error is None:
                try:
                    os.fsync(self.fd)
                except OSError as exc:
                    self.error = exc
            if self.error is None:
                self.file_bytes = os.fstat(self.fd).st_size  # what the file holds, after any cut
            else:
                self._keep_whole_records()
            os.close(self.fd)

    def _keep_whole_records(self) -> None:
        if self.stream.written < FILE_HEADER_BYTES:
            self.path.unlink(missing_ok=True)
            self.packets = self.file_bytes = 0
            return
        whole_bytes, whole_packets = self._whole
        with os.fdopen(os.dup(self.fd), "r+b") as handle:
            self.packets = whole_packets + cut_after_last_record(handle, max(whole_bytes, FILE_HEADER_BYTES))
            self.file_bytes = os.fstat(handle.fileno()).st_size
