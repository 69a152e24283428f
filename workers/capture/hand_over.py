"""The look-back hand-over: a capture's file begins with the look-back ring's packets that
match the capture's own filter, then goes on with the capture's live packets, in timestamp
order, none lost and none twice.

The capture's live source is opened first; once every packet the kernel took before that
is readable (the kernel hands packets up a block at a time), the ring is asked for its
window, and the capture's own socket is read up to the ring's last packet: every packet
from before the live source opened is in the ring alone, those that arrived in between
are in both. Two packet sockets stamp the same packet a few
microseconds apart, so the overlap is found by content: the live packets at the head of
the capture that equal (length and bytes, to the shorter snap length) a ring packet of the
overlap, stamped within TOLERANCE of each other, are that packet seen twice and are
dropped; every other live packet is kept. (Byte-identical packets within TOLERANCE of the
seam are the one case this cannot tell apart; real traffic differs in IP IDs, sequence
numbers or checksums.)
"""

from __future__ import annotations

from typing import Any
import ctypes
import time
from collections import Counter
from dataclasses import dataclass

from shared import libpcap
from shared.bpf import BpfProgram
from workers.capture.interfaces import PacketSource
from workers.capture.live_source import READABLE_WITHIN_SECONDS
from workers.capture.look_back import LookBackRing, TimedRecord
from workers.capture.pcap_format import native_record

TOLERANCE = 0.01
HEAD_BATCH = 256


@dataclass(frozen=True)
class HandOver:
    """What goes into the capture's file before its live packets, and how much of it came
    from before the capture."""

    records: bytes
    look_back_packets: int
    earliest: float | None


def matching(ring: list[TimedRecord], program: BpfProgram, snaplen: int) -> list[TimedRecord]:
    """The ring's packets that the capture's filter takes, cut to the capture's snap length."""
    struct, _keep = program.as_struct()
    test = libpcap.lib().pcap_offline_filter
    header = libpcap.PcapPkthdr()
    kept = []
    for record in ring:
        header.caplen, header.len = len(record.frame), record.length
        if test(ctypes.byref(struct), ctypes.byref(header), record.frame):
            frame = record.frame[:snaplen] if snaplen else record.frame
            kept.append(record if frame is record.frame else
                        TimedRecord(record.seconds, record.micros, record.length, frame))
    return kept


def live_head(source: PacketSource, until: float, within: float) -> list[TimedRecord]:
    """The live packets up to and including the first stamped after `until`, waiting up to
    `within` seconds for it (the rest stay in the kernel for the session)."""
    head: list[TimedRecord] = []

    def take(_user: Any, header: Any, data: Any) -> None:  # pcap_handler's (u_char*, pkthdr*, bytes*)
        caplen = header.contents.caplen
        head.append(TimedRecord(header.contents.ts.tv_sec, header.contents.ts.tv_usec, header.contents.len,
                                ctypes.string_at(data, caplen)))

    callback = libpcap.PcapHandler(take)
    deadline = time.monotonic() + within
    while not head or head[-1].at <= until:
        if source.dispatch(HEAD_BATCH, callback, None) == 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            source.wait(min(left, 0.05))
    return head


def hand_over(ring: LookBackRing, source: PacketSource, program: BpfProgram, since: float,
              opened_at: float) -> HandOver:
    """Call right after the capture's live source (`source`, filtered by `program`) opened,
    at wall time `opened_at`: the look-back packets since `since`, merged with the live
    packets already taken, ready to be written first."""
    time.sleep(READABLE_WITHIN_SECONDS)  # until the ring can read every packet from before `opened_at`
    past = matching(ring.window(since), program, source.snaplen)
    last = past[-1].at if past else opened_at
    head = live_head(source, last + TOLERANCE, READABLE_WITHIN_SECONDS)
    common = min(source.snaplen, ring.source.snaplen)
    seen_twice = Counter((r.length, r.frame[:common]) for r in past if r.at >= opened_at - TOLERANCE)
    live = []
    for record in head:
        key = (record.length, record.frame[:common])
        if seen_twice[key] and record.at <= last + TOLERANCE:
            seen_twice[key] -= 1
            continue
        live.append(record)
    merged = sorted(past + live, key=lambda record: (record.seconds, record.micros))
    records = b"".join(native_record(r.seconds, r.micros, r.length, r.frame) for r in merged)
    return HandOver(records, len(past), past[0].at if past else None)
