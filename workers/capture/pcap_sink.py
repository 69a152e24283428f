"""Where packets go: a libpcap file that never passes its byte budget, and that is never
left torn.

While there is room for a whole batch at the snap length, libpcap's own pcap_dump is the
callback, so no Python runs per packet; near the budget each packet is checked first.
The file is opened by the caller (exclusively, see local_paths) and written through a
checked stream: the first write that fails (disk full, quota, I/O error, file-size
limit) ends the capture, and the file is cut after its last whole record, so every count
reported is what the file holds.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from shared import libpcap
from workers.capture_engine import LiveCapture
from workers.checked_stream import CheckedStream
from workers.pcap_file import FILE_HEADER_BYTES, RECORD_HEADER_BYTES, cut_after_last_record

BATCH = 4096


class CaptureWriteError(OSError):
    """Writing the capture file failed; carries the OS reason."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        super().__init__(error.errno, f"writing capture file {path} failed: {error.strerror or error}")


class PcapFileSink:
    def __init__(self, fd: int, path: Path, linktype: int, snaplen: int, byte_limit: int) -> None:
        self.fd = fd
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

    def _write_if_room(self, _user, header, data) -> None:  # type: ignore[no-untyped-def]
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

    def drain(self, source: LiveCapture) -> int:
        """Move every packet the kernel has ready into the file; returns how many moved."""
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
                self.file_bytes = self.stream.written
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
