"""Continuous capture's ring of files, driven through the PacketSource seam: a numbered
packet stream crossing many file seams arrives whole, in order, with no gap and no packet
twice; no file passes its size; a rolling ring keeps the newest files and removes the
oldest first; a ring that does not roll ends the session when its files are full."""

from __future__ import annotations

import threading

from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from shared.arm import StopReason
from tests.unit.test_capture_session import FakeSource, frame
from workers.capture.pcap_format import FILE_HEADER_BYTES, RECORD_HEADER_BYTES
from workers.capture.ring_sink import RingLayout, RingSink
from workers.capture.session import SessionLimits, StopSignal, run_session

RECORD = RECORD_HEADER_BYTES + len(frame(0))


def _numbers(path) -> list[int]:
    return [int.from_bytes(bytes(packet[UDP].payload)[:4], "big") for packet in rdpcap(str(path))]


def _ring(tmp_path, count: int, rolling: bool, per_file: int = 7, closed=None) -> RingSink:
    layout = RingLayout(tmp_path, lambda index: f"ring_{index:05d}.cap", FILE_HEADER_BYTES + per_file * RECORD + 5,
                        count, rolling)
    return RingSink(layout, FakeSource.linktype, 65535, on_closed=(closed if closed is not None else []).append)


def test_a_stream_crossing_many_seams_arrives_whole_in_order_without_duplicates(tmp_path):
    source = FakeSource([frame(n) for n in range(100)], per_wait=9)
    closed: list = []
    sink = _ring(tmp_path, count=1000, rolling=False, closed=closed)
    stop = StopSignal()
    threading.Timer(0.5, lambda: stop.set(StopReason.MANUALLY_STOPPED)).start()
    outcome = run_session(source, sink, SessionLimits(0, 10**9, 60), stop)
    assert outcome.stop_reason is StopReason.MANUALLY_STOPPED
    files = sorted(tmp_path.glob("ring_*.cap"))
    assert len(files) == 15 and [c.path for c in closed] == files, "100 packets, 7 a file"
    assert [n for path in files for n in _numbers(path)] == list(range(100))
    assert all(path.stat().st_size <= sink.layout.file_bytes for path in files)
    assert [c.packets for c in closed] == [7] * 14 + [2] and sink.packets == outcome.packets == 100
    assert sink.file_bytes == sum(path.stat().st_size for path in files)


def test_a_rolling_ring_keeps_the_newest_files_and_removes_the_oldest_first(tmp_path):
    source = FakeSource([frame(n) for n in range(60)], per_wait=60)
    sink = _ring(tmp_path, count=3, rolling=True)
    stop = StopSignal()
    threading.Timer(0.3, lambda: stop.set(StopReason.MANUALLY_STOPPED)).start()
    outcome = run_session(source, sink, SessionLimits(0, 10**9, 60), stop)
    files = sorted(tmp_path.glob("ring_*.cap"))
    assert [path.name for path in files] == ["ring_00007.cap", "ring_00008.cap", "ring_00009.cap"]
    assert [n for path in files for n in _numbers(path)] == list(range(42, 60)), "the newest packets, whole"
    assert sink.removed == 6 and outcome.packets == 60


def test_a_ring_that_does_not_roll_ends_the_session_when_its_files_are_full(tmp_path):
    source = FakeSource([], per_wait=5, repeat=True)
    sink = _ring(tmp_path, count=4, rolling=False)
    outcome = run_session(source, sink, SessionLimits(0, 10**9, 60), StopSignal())
    assert outcome.stop_reason is StopReason.BYTES_EXCEEDED
    files = sorted(tmp_path.glob("ring_*.cap"))
    assert len(files) == 4 and [n for path in files for n in _numbers(path)] == list(range(28))
