"""The look-back ring and its hand-over, driven through the PacketSource seam by sources of
the test's own whose packets carry chosen timestamps: the ring stays within its spool bound
and hands out the newest packets whole and in order; a capture's file begins with the
ring's matching packets and goes on with its live ones, none lost and none twice, even
when the two sockets stamp the same packet differently or the ring missed one."""

from __future__ import annotations

import ctypes
import threading
import time
from collections import deque

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from shared import libpcap
from shared.arm import PacketCaptureFilter, StopReason
from shared.bpf import compile_filters
from shared.filters import parse_filters
from workers.capture.hand_over import hand_over, matching
from workers.capture.interfaces import KernelCounters
from workers.capture.look_back import FILES, LookBackRing, LookBackSettings
from workers.capture.pcap_format import native_record
from workers.capture.pcap_sink import PcapFileSink
from workers.capture.ring_sink import RingLayout, RingSink
from workers.capture.session import SessionLimits, StopSignal, run_session

BASE = 1_800_000_000.0
SNAPLEN = 256


def frame(number: int, port: int = 7000, payload: int = 60) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=port) /
                 number.to_bytes(4, "big").ljust(payload, b"x"))


class StampedSource:
    """Hands out (timestamp, frame) pairs it was fed, as a kernel socket would."""

    linktype = libpcap.DLT_EN10MB

    def __init__(self, snaplen: int = 65535) -> None:
        self.snaplen = snaplen
        self.ready: deque[tuple[float, bytes]] = deque()
        self.closed = False

    def feed(self, packets: list[tuple[float, bytes]]) -> None:
        self.ready.extend(packets)

    def wait(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.002))

    def dispatch(self, count: int, callback, user) -> int:  # type: ignore[no-untyped-def]
        handler = ctypes.cast(callback, libpcap.PcapHandler)
        done = 0
        while self.ready and (count < 0 or done < count):
            at, data = self.ready.popleft()
            header = libpcap.PcapPkthdr()
            header.ts.tv_sec, header.ts.tv_usec = int(at), round((at - int(at)) * 1e6)
            header.caplen, header.len = min(len(data), self.snaplen), len(data)
            buffer = (ctypes.c_ubyte * header.caplen).from_buffer_copy(data[:header.caplen])
            handler(user, ctypes.byref(header), buffer)
            done += 1
        return done

    def counters(self) -> KernelCounters:
        return KernelCounters(0, 0, 0)

    def close(self) -> None:
        self.closed = True


def _number(data: bytes) -> int:
    return int.from_bytes(bytes(Ether(data)[UDP].payload)[:4], "big")


def _ring(tmp_path, spool_bytes: int = 10**7, seconds: int = 60) -> tuple[LookBackRing, StampedSource]:
    source = StampedSource(snaplen=SNAPLEN)
    return LookBackRing(LookBackSettings(seconds, spool_bytes, SNAPLEN, tmp_path / "spool"), source), source


def test_the_ring_keeps_the_newest_packets_whole_and_in_order_within_its_spool_bound(tmp_path):
    spool = FILES * 4096
    ring, source = _ring(tmp_path, spool_bytes=spool)
    for batch in range(20):  # 20 × 200 packets of ~118 bytes: far more than the spool holds
        source.feed([(BASE + n / 1000, frame(n)) for n in range(batch * 200, batch * 200 + 200)])
        ring.window(0)
        assert ring.held_bytes <= spool
    numbers = [_number(record.frame) for record in ring.window(0)]
    assert numbers == list(range(numbers[0], 4000)), "the newest packets, none missing at a file seam"
    assert 3000 < numbers[0], "older packets were removed to stay within the bound"
    assert len(list((tmp_path / "spool").iterdir())) <= FILES


def test_the_window_starts_at_the_time_asked_for(tmp_path):
    ring, source = _ring(tmp_path)
    source.feed([(BASE + n, frame(n)) for n in range(10)])
    assert [_number(r.frame) for r in ring.window(BASE + 6.5)] == [7, 8, 9]


def test_the_standing_ring_runs_until_stopped_and_leaves_no_spool(tmp_path):
    ring, source = _ring(tmp_path)
    stop = threading.Event()
    runner = threading.Thread(target=ring.run, args=(stop,))
    runner.start()
    source.feed([(BASE + n, frame(n)) for n in range(50)])
    deadline = time.monotonic() + 5
    while source.ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [_number(r.frame) for r in ring.window(0)] == list(range(50))
    stop.set()
    runner.join(5)
    assert source.closed and not list((tmp_path / "spool").iterdir())


def _program(port: int = 7000):  # type: ignore[no-untyped-def]
    return compile_filters(parse_filters([PacketCaptureFilter(protocol="UDP", remote_port=str(port))]))


def _capture_file(tmp_path, ring, live, opened_at: float, since: float, stop_after: float = 0.3):  # type: ignore[no-untyped-def]
    program = _program()
    sink = PcapFileSink.create(tmp_path, "capture.cap", live.linktype, live.snaplen, 10**9)
    given = hand_over(ring, live, program, since, opened_at)
    sink.take_records(given.records)
    stop = StopSignal()
    threading.Timer(stop_after, lambda: stop.set(StopReason.MANUALLY_STOPPED)).start()
    outcome = run_session(live, sink, SessionLimits(0, 10**9, 60), stop)
    packets = rdpcap(str(outcome.path))
    return given, outcome, packets


def test_a_capture_begins_with_the_look_back_then_its_live_packets_none_lost_none_twice(tmp_path):
    ring, ring_in = _ring(tmp_path)
    live = StampedSource()
    stream = [(BASE + n / 100, frame(n)) for n in range(1000)]
    other = [(BASE + n / 100 + 0.001, frame(n, port=9999)) for n in range(700)]  # not the capture's traffic
    ring_in.feed(sorted(stream[:700] + other))
    # The capture's socket opened at packet 600: it has 600… (stamped 4 µs later than the
    # ring's socket stamped them), the ring has …699 (and took them all before the capture read).
    live.feed([(at + 4e-6, data) for at, data in stream[600:]])
    given, outcome, packets = _capture_file(tmp_path, ring, live, opened_at=BASE + 5.995, since=BASE + 2.0)
    numbers = [_number(bytes(p)) for p in packets]
    assert numbers == list(range(200, 1000)), "the window from `since`, then live, each packet once, in order"
    assert given.look_back_packets == 500 and outcome.packets == 800
    assert [float(p.time) for p in packets] == sorted(float(p.time) for p in packets)


def test_a_packet_the_ring_missed_at_the_seam_comes_from_the_live_side(tmp_path):
    ring, ring_in = _ring(tmp_path)
    live = StampedSource()
    stream = [(BASE + n / 100, frame(n)) for n in range(300)]
    ring_in.feed([packet for n, packet in enumerate(stream[:250]) if n != 230])  # the ring dropped 230
    live.feed([(at + 2e-6, data) for at, data in stream[200:]])
    _given, _outcome, packets = _capture_file(tmp_path, ring, live, opened_at=BASE + 1.995, since=BASE)
    assert [_number(bytes(p)) for p in packets] == list(range(300))


def test_with_an_empty_ring_the_capture_is_its_live_packets(tmp_path):
    ring, _ring_in = _ring(tmp_path)
    live = StampedSource()
    live.feed([(BASE + n, frame(n)) for n in range(20)])
    given, _outcome, packets = _capture_file(tmp_path, ring, live, opened_at=BASE, since=BASE - 60)
    assert given.look_back_packets == 0 and given.earliest is None
    assert [_number(bytes(p)) for p in packets] == list(range(20))


def test_look_back_packets_fill_a_continuous_capture_ring_across_its_file_seams(tmp_path):
    records = b"".join(native_record(int(BASE) + n, 0, len(frame(n)), frame(n)) for n in range(10))
    size = 16 + len(frame(0))
    layout = RingLayout(tmp_path, lambda index: f"ring_{index:05d}.cap", 24 + 3 * size + 5, count=10, rolling=True)
    ring = RingSink(layout, libpcap.DLT_EN10MB, 65535)
    assert ring.take_records(records) == b""
    ring.close()
    files = sorted(tmp_path.glob("ring_*.cap"))
    assert [len(rdpcap(str(path))) for path in files] == [3, 3, 3, 1]
    assert [_number(bytes(p)) for path in files for p in rdpcap(str(path))] == list(range(10))


def test_look_back_packets_are_cut_to_the_capture_snap_length_and_keep_their_length(tmp_path):
    ring, ring_in = _ring(tmp_path)
    ring_in.feed([(BASE + n, frame(n, payload=150)) for n in range(3)])
    cut = matching(ring.window(0), _program(), 64)
    assert [(len(r.frame), r.length) for r in cut] == [(64, len(frame(0, payload=150)))] * 3
    assert matching(ring.window(0), _program(port=7001), 64) == [], "the capture's filter applies"
