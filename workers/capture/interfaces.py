"""The two seams of the capture pipeline, as small protocols: what a session needs from
whatever reads packets and from wherever they go. The live libpcap handle and the pcap
file are one implementation each; tests drive a session with a source of their own."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class KernelCounters:
    received: int
    dropped: int
    interface_dropped: int


class PacketSource(Protocol):
    """Packets as libpcap hands them: a link type, a snap length, and `dispatch`, which calls
    a pcap_handler (C or ctypes) with (user, header, data) for each ready packet."""

    linktype: int
    snaplen: int

    def wait(self, seconds: float) -> None:
        """Return when packets may be ready, or after `seconds`."""

    def dispatch(self, count: int, callback: ctypes._CData, user: ctypes.c_void_p | None) -> int:
        """Hand up to `count` ready packets to `callback`; returns how many."""

    def counters(self) -> KernelCounters: ...

    def close(self) -> None: ...


class PacketSink(Protocol):
    """Where a session's packets go, within a byte budget; the first write that fails ends
    the session (`error`), and what was kept is counted from what is really stored."""

    @property
    def path(self) -> Path: ...

    @property
    def packets(self) -> int: ...

    @property
    def file_bytes(self) -> int: ...

    @property
    def full(self) -> bool: ...

    @property
    def error(self) -> OSError | None: ...

    def drain(self, source: PacketSource) -> int:
        """Take every packet `source` has ready (until full); returns how many."""

    def progress(self) -> tuple[int, int]:
        """(packets, bytes) written so far; safe to read from another thread (a heartbeat)."""

    def close(self) -> None: ...


class RecordSink(PacketSink, Protocol):
    """A sink that also takes records captured elsewhere: what a capture that begins with
    the look-back ring's packets writes to (both the file and the ring of files are)."""

    def take_records(self, records: bytes) -> bytes:
        """Write whole pcap records (host order) from elsewhere (the look-back ring), as far
        as the budget allows; returns what did not fit."""
