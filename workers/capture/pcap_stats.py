"""Network statistics of a finished capture file: packets per protocol, top talkers, and
the file's SHA-256, all in one pass over the file.

Reads the records as pcap_format yields them (no per-packet objects), so it keeps up with
big files.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from shared.arm import Talker
from workers.capture.pcap_format import records

TOP_TALKERS = 10
_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 47: "GRE", 50: "ESP"}
_ETHERTYPES = {0x0806: "ARP", 0x88CC: "LLDP"}


@dataclass
class FileStatistics:
    packets: int = 0
    protocols: Counter = field(default_factory=Counter)
    talkers: Counter = field(default_factory=Counter)
    talker_packets: Counter = field(default_factory=Counter)
    sha256: str = ""

    def top_talkers(self) -> list[Talker]:
        return [Talker(source=src, destination=dst, packets=self.talker_packets[(src, dst)], bytes=size)
                for (src, dst), size in self.talkers.most_common(TOP_TALKERS)]


def _classify(frame: bytes) -> tuple[str, tuple[str, str] | None]:
    if len(frame) < 14:
        return "other", None
    ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
    while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:
        ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
    if ethertype == 0x0800 and len(frame) >= offset + 20:
        proto = frame[offset + 9]
        src, dst = frame[offset + 12:offset + 16], frame[offset + 16:offset + 20]
        return _PROTOCOLS.get(proto, f"IP/{proto}"), (str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst)))
    if ethertype == 0x86DD and len(frame) >= offset + 40:
        proto = frame[offset + 6]
        src, dst = frame[offset + 8:offset + 24], frame[offset + 24:offset + 40]
        return _PROTOCOLS.get(proto, f"IPv6/{proto}"), (str(ipaddress.IPv6Address(src)),
                                                        str(ipaddress.IPv6Address(dst)))
    return _ETHERTYPES.get(ethertype, "other"), None


class _Hashing:
    """A file read through a digest: every byte read is hashed."""

    def __init__(self, handle: BinaryIO, digest: "hashlib._Hash") -> None:
        self.handle = handle
        self.digest = digest

    def read(self, size: int = -1, /) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def read_statistics(path: Path) -> FileStatistics:
    stats = FileStatistics()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        reader = _Hashing(handle, digest)
        for length, frame in records(reader):
            stats.packets += 1
            protocol, talker = _classify(frame[:64])
            stats.protocols[protocol] += 1
            if talker is not None:
                stats.talkers[talker] += length
                stats.talker_packets[talker] += 1
        reader.read()  # a torn tail is part of the file's digest too
    stats.sha256 = digest.hexdigest()
    return stats
