"""The libpcap file format, in one place: its headers (the sink writes files through
libpcap's own pcap_dump, in this format), reading records back (statistics), and cutting
a file after its last whole record (a file left by a killed agent, or by a write that
failed half way)."""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from shared.libpcap import DLT_EN10MB

FILE_HEADER = struct.Struct("<IHHiIII")
FILE_HEADER_BYTES = FILE_HEADER.size
RECORD_HEADER_BYTES = 16
MAX_SNAPLEN = 262144
_LITTLE_MAGICS = (0xA1B2C3D4, 0xA1B23C4D)


def record_struct(header: bytes) -> struct.Struct:
    """The record header layout for a file with this file header (either byte order)."""
    little = struct.unpack_from("<I", header)[0] in _LITTLE_MAGICS
    return struct.Struct(("<" if little else ">") + "IIII")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def records(handle: Readable) -> Iterator[tuple[int, bytes]]:
    """(original length, captured bytes) of each whole record of a file read from its start;
    ends at the first torn record."""
    for _seconds, _micros, length, frame in timed_records(handle):
        yield length, frame


def timed_records(handle: Readable, end: int | None = None) -> Iterator[tuple[int, int, int, bytes]]:
    """(seconds, microseconds, original length, captured bytes) of each whole record of a
    microsecond file read from its start, up to byte `end` if given; ends at the first torn
    record."""
    header = handle.read(FILE_HEADER_BYTES)
    if len(header) < FILE_HEADER_BYTES:
        return
    record = record_struct(header)
    offset = FILE_HEADER_BYTES
    while end is None or offset + RECORD_HEADER_BYTES <= end:
        head = handle.read(RECORD_HEADER_BYTES)
        if len(head) < RECORD_HEADER_BYTES:
            return
        seconds, micros, caplen, length = record.unpack(head)
        frame = handle.read(caplen)
        offset += RECORD_HEADER_BYTES + caplen
        if len(frame) < caplen or (end is not None and offset > end):
            return
        yield seconds, micros, length, frame


NATIVE_RECORD = struct.Struct(("<" if sys.byteorder == "little" else ">") + "IIII")


def native_record(seconds: int, micros: int, length: int, frame: bytes) -> bytes:
    """One record in host order, as libpcap writes them (for PcapFileSink.take_records)."""
    return NATIVE_RECORD.pack(seconds, micros, len(frame), length) + frame


def split_records(records: bytes, room: int) -> tuple[int, int]:
    """Of whole records in host order (as libpcap writes them), how many bytes and records
    from the start fit in `room` bytes."""
    offset = count = 0
    while offset + RECORD_HEADER_BYTES <= len(records):
        caplen = NATIVE_RECORD.unpack_from(records, offset)[2]
        end = offset + RECORD_HEADER_BYTES + caplen
        if end > room or end > len(records):
            break
        offset, count = end, count + 1
    return offset, count


def whole_records(handle: BinaryIO, start: int, end: int) -> tuple[int, int]:
    """Walk the records from offset `start` (a record boundary) up to `end`: (offset just
    after the last whole record, how many whole records)."""
    handle.seek(0)
    record = record_struct(handle.read(FILE_HEADER_BYTES))
    offset, count = start, 0
    while offset + RECORD_HEADER_BYTES <= end:
        handle.seek(offset)
        caplen, length = record.unpack(handle.read(RECORD_HEADER_BYTES))[2:]
        if caplen > MAX_SNAPLEN or caplen > length or offset + RECORD_HEADER_BYTES + caplen > end:
            break
        offset += RECORD_HEADER_BYTES + caplen
        count += 1
    return offset, count


def cut_after_last_record(handle: BinaryIO, start: int = FILE_HEADER_BYTES) -> int:
    """Truncate an open file after its last whole record past `start`; returns how many
    whole records lie past `start`. The file must hold at least its header."""
    end = os.fstat(handle.fileno()).st_size
    offset, count = whole_records(handle, start, end)
    if offset != end:
        handle.truncate(offset)
        handle.flush()
        os.fsync(handle.fileno())
    return count


def repair_pcap(path: Path) -> int:
    """Make the file at `path` readable: cut a torn last record (writing a header if even that
    is missing); returns how many whole records it holds. Never follows a symbolic link."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "r+b") as handle:
        if os.fstat(fd).st_size < FILE_HEADER_BYTES:
            handle.truncate(0)
            handle.write(FILE_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, MAX_SNAPLEN, DLT_EN10MB))
            handle.flush()
            os.fsync(fd)
            return 0
        return cut_after_last_record(handle)
