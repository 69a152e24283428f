"""The session's stop logic, driven through the PacketSource seam by a source of the test's
own (packets it releases a few at a time, as the kernel would) into the real pcap sink:
each limit and the stop signal end it with their reason, the file never passes its byte
budget, and every count reported is what the file holds, read back with scapy."""

from __future__ import annotations

import ctypes
import threading
import time
from collections import deque

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from shared import libpcap
from shared.arm import StopReason
from workers.capture.interfaces import KernelCounters
from workers.capture.pcap_format import FILE_HEADER_BYTES, RECORD_HEADER_BYTES
from workers.capture.pcap_sink import PcapFileSink
from workers.capture.session import SessionLimits, StopSignal, run_session


def frame(number: int, payload: int = 100) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=7000) /
                 number.to_bytes(4, "big").ljust(payload, b"x"))


class FakeSource:
    """Releases `per_wait` packets each time the session waits; endless when `repeat`."""

    linktype = libpcap.DLT_EN10MB

    def __init__(self, frames: list[bytes], per_wait: int = 5, snaplen: int = 65535, repeat: bool = False) -> None:
        self.pending = deque(frames)
        self.ready: deque[bytes] = deque()
        self.per_wait = per_wait
        self.snaplen = snaplen
        self.repeat = repeat
        self.sent = 0
        self.closed = False

    def wait(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.005))
        for _ in range(self.per_wait):
            if not self.pending and self.repeat:
                self.pending.append(frame(self.sent + len(self.ready)))
            if self.pending:
                self.ready.append(self.pending.popleft())

    def dispatch(self, count: int, callback, user) -> int:  # type: ignore[no-untyped-def]
        handler = ctypes.cast(callback, libpcap.PcapHandler)
        done = 0
        while self.ready and (count < 0 or done < count):
            data = self.ready.popleft()
            header = libpcap.PcapPkthdr()
            header.ts.tv_sec, header.ts.tv_usec = 1_800_000_000 + self.sent, 0
            header.caplen, header.len = min(len(data), self.snaplen), len(data)
            buffer = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
            handler(user, ctypes.byref(header), buffer)
            self.sent += 1
            done += 1
        return done

    def counters(self) -> KernelCounters:
        return KernelCounters(self.sent, 0, 0)

    def close(self) -> None:
        self.closed = True


def _sink(tmp_path, source: FakeSource, byte_limit: int) -> PcapFileSink:
    return PcapFileSink.create(tmp_path, "session.cap", source.linktype, source.snaplen, byte_limit)


def _numbers(path) -> list[int]:
    return [int.from_bytes(bytes(packet[UDP].payload)[:4], "big") for packet in rdpcap(str(path))]


def test_a_stop_signal_ends_the_session_as_manually_stopped_with_every_packet_released(tmp_path):
    source = FakeSource([frame(n) for n in range(40)], per_wait=4)
    stop = StopSignal()
    started = []
    threading.Timer(0.3, lambda: stop.set(StopReason.MANUALLY_STOPPED)).start()
    outcome = run_session(source, _sink(tmp_path, source, 10**9), SessionLimits(0, 10**9, 60), stop, started.append)
    assert outcome.stop_reason is StopReason.MANUALLY_STOPPED and len(started) == 1
    assert outcome.packets == source.sent == 40, "everything released before the stop is kept"
    assert _numbers(outcome.path) == list(range(40))
    assert outcome.file_bytes == outcome.path.stat().st_size and source.closed


def test_the_time_limit_ends_the_session_as_time_exceeded(tmp_path):
    source = FakeSource([], per_wait=2, repeat=True)
    began = time.monotonic()
    outcome = run_session(source, _sink(tmp_path, source, 10**9), SessionLimits(0, 10**9, 0.4), StopSignal())
    assert outcome.stop_reason is StopReason.TIME_EXCEEDED and time.monotonic() - began >= 0.4
    assert _numbers(outcome.path) == list(range(outcome.packets)) and outcome.packets == source.sent > 0


def test_the_byte_budget_ends_the_session_as_bytes_exceeded_and_is_never_passed(tmp_path):
    size = len(frame(0))
    budget = FILE_HEADER_BYTES + 25 * (RECORD_HEADER_BYTES + size) + 10  # room for 25 whole records, not 26
    source = FakeSource([], per_wait=7, repeat=True)
    outcome = run_session(source, _sink(tmp_path, source, budget), SessionLimits(0, budget, 60), StopSignal())
    assert outcome.stop_reason is StopReason.BYTES_EXCEEDED
    assert outcome.packets == 25 and _numbers(outcome.path) == list(range(25))
    assert outcome.file_bytes == outcome.path.stat().st_size <= budget


def test_a_snap_length_cuts_each_packet_and_the_file_says_so(tmp_path):
    source = FakeSource([frame(n, payload=500) for n in range(6)], per_wait=6, snaplen=64)
    stop = StopSignal()
    threading.Timer(0.1, lambda: stop.set(StopReason.MANUALLY_STOPPED)).start()
    outcome = run_session(source, _sink(tmp_path, source, 10**9), SessionLimits(64, 10**9, 60), stop)
    packets = rdpcap(str(outcome.path))
    assert len(packets) == 6 and {len(bytes(p)) for p in packets} == {64}
    assert {p.wirelen for p in packets} == {len(frame(0, payload=500))}
