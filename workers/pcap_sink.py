"""Where packets go: a libpcap file that never passes its byte budget.

While there is room for a whole batch at the snap length, libpcap's own pcap_dump is the
callback, so no Python runs per packet; near the budget each packet is checked first.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from shared import libpcap
from workers.capture_engine import LiveCapture

PCAP_FILE_HEADER = 24
PCAP_RECORD_HEADER = 16
BATCH = 4096


class SinkOpenError(OSError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot write capture file {path}: {reason}")


class PcapFileSink:
    def __init__(self, source: LiveCapture, path: Path, byte_limit: int) -> None:
        self.path = path
        self.byte_limit = byte_limit
        self.record_max = PCAP_RECORD_HEADER + source.snaplen
        self.packets = 0
        self.full = False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        pcap = libpcap.lib()
        self.dumper = pcap.pcap_dump_open(source.handle, str(path).encode())
        if not self.dumper:
            raise SinkOpenError(path, (pcap.pcap_geterr(source.handle) or b"").decode(errors="replace"))
        self._checked = libpcap.PcapHandler(self._write_if_room)

    @property
    def size(self) -> int:
        return libpcap.lib().pcap_dump_ftell(self.dumper)

    def _write_if_room(self, _user, header, data) -> None:  # type: ignore[no-untyped-def]
        if self.size + PCAP_RECORD_HEADER + header.contents.caplen > self.byte_limit:
            self.full = True
            return
        libpcap.lib().pcap_dump(self.dumper, header, ctypes.cast(data, ctypes.c_void_p))
        self.packets += 1

    def drain(self, source: LiveCapture) -> int:
        """Move every packet the kernel has ready into the file; returns how many moved."""
        moved = 0
        while not self.full:
            room = (self.byte_limit - self.size) // self.record_max
            if room > 0:
                want = min(room, BATCH)
                done = source.dispatch(want, libpcap.dump_callback(), self.dumper)
                self.packets += done
            else:
                before = self.packets
                done = source.dispatch(1, self._checked, None)
                done = self.packets - before if done else 0
            moved += done
            if done == 0:
                break
        libpcap.lib().pcap_dump_flush(self.dumper)
        return moved

    def close(self) -> None:
        if self.dumper:
            libpcap.lib().pcap_dump_close(self.dumper)
            self.dumper = None
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
