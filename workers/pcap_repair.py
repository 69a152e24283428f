"""Make a capture file left by a killed agent readable: cut a torn last record."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from shared.libpcap import DLT_EN10MB

HEADER = struct.Struct("<IHHiIII")
MAX_SNAPLEN = 262144


def repair_pcap(path: Path) -> int:
    """Truncate `path` after its last whole record (writing a header if even that is
    missing); returns how many whole records it holds."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        header = handle.read(24)
        if len(header) < 24:
            handle.seek(0)
            handle.truncate()
            handle.write(HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, MAX_SNAPLEN, DLT_EN10MB))
            handle.flush()
            os.fsync(handle.fileno())
            return 0
        endian = "<" if struct.unpack_from("<I", header)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        record = struct.Struct(endian + "IIII")
        offset, records = 24, 0
        while offset + 16 <= size:
            handle.seek(offset)
            caplen = record.unpack(handle.read(16))[2]
            if caplen > MAX_SNAPLEN or offset + 16 + caplen > size:
                break
            offset += 16 + caplen
            records += 1
        if offset != size:
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())
    return records
