import hashlib
import os
import struct

import pytest

from shared.arm import PacketCaptureParameters
from workers.capture.session import SessionLimits

from workers.agent.journal import Journal, JournalEntry
from workers.capture.pcap_format import repair_pcap
from workers.capture.pcap_stats import read_statistics
from workers.capture.local_paths import CapturePathRefused, create_capture_file


def test_a_capture_begins_once_however_often_it_is_delivered(tmp_path):
    journal = Journal(tmp_path / "journal")
    assert journal.begin("run-1", "/c/1")
    assert not journal.begin("run-1", "/c/1")
    assert not Journal(tmp_path / "journal").begin("run-1", "/c/1"), "a restarted agent remembers"
    assert not journal.finished("run-1")
    journal.set_path("run-1", "/c/1", tmp_path / "x.cap")
    assert journal.begin("run-2", "/c/2")
    assert sorted(Journal(tmp_path / "journal").unfinished(), key=lambda e: e.run_id) == [
        JournalEntry("run-1", "/c/1", str(tmp_path / "x.cap")), JournalEntry("run-2", "/c/2", None)]
    journal.finish("run-1")
    assert journal.finished("run-1")
    assert [e.run_id for e in journal.unfinished()] == ["run-2"]


def _pcap(records: list[bytes]) -> bytes:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    return head + b"".join(struct.pack("<IIII", 1, 0, len(r), len(r)) + r for r in records)


@pytest.mark.parametrize("cut, whole", [(0, 3), (5, 2), (116, 2), (117, 1), (116 + 96 + 76, 0), (116 + 96 + 75, 0)])
def test_a_torn_last_record_is_cut_and_whole_records_kept(tmp_path, cut, whole):
    data = _pcap([b"a" * 60, b"b" * 80, b"c" * 100])
    path = tmp_path / "torn.cap"
    path.write_bytes(data[:len(data) - cut])
    assert repair_pcap(path) == whole
    assert path.read_bytes() == _pcap([b"a" * 60, b"b" * 80, b"c" * 100][:whole])


def test_a_file_without_even_a_header_gets_one(tmp_path):
    path = tmp_path / "empty.cap"
    path.write_bytes(b"\xd4\xc3")
    assert repair_pcap(path) == 0
    assert path.read_bytes() == _pcap([])


def _create(root, relative):
    fd, path = create_capture_file(root, relative)
    os.close(fd)
    return path


def test_capture_files_are_created_inside_the_capture_folder(tmp_path):
    assert _create(tmp_path, "a/b/c.cap") == tmp_path / "a" / "b" / "c.cap"
    assert (tmp_path / "a" / "b" / "c.cap").is_file()


def test_a_capture_file_is_created_exclusively_never_reused(tmp_path):
    _create(tmp_path, "a/c.cap")
    (tmp_path / "a" / "c.cap").write_bytes(b"evidence")
    with pytest.raises(CapturePathRefused, match="already exists"):
        _create(tmp_path, "a/c.cap")
    assert (tmp_path / "a" / "c.cap").read_bytes() == b"evidence"


@pytest.mark.parametrize("relative", ["../x.cap", "/etc/x.cap", "a/../../x.cap", "", "a\x00.cap"])
def test_paths_that_leave_the_folder_are_refused(tmp_path, relative):
    with pytest.raises(CapturePathRefused):
        _create(tmp_path, relative)


def test_symlinks_in_the_capture_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(CapturePathRefused, match="symbolic link"):
        _create(root, "link/x.cap")
    (outside / "target.cap").write_bytes(b"")
    (root / "file.cap").symlink_to(outside / "target.cap")
    with pytest.raises(CapturePathRefused):
        _create(root, "file.cap")
    (root / "dangling.cap").symlink_to(outside / "not-yet.cap")
    with pytest.raises(CapturePathRefused):
        _create(root, "dangling.cap")
    assert sorted(outside.iterdir()) == [outside / "target.cap"]


def test_file_statistics_count_protocols_and_talkers_and_hash_the_whole_file(tmp_path):
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    mac = "02:00:00:00:00:01"
    frames = [bytes(Ether(src=mac, dst=mac) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP() / (b"x" * 10))] * 3 + \
        [bytes(Ether(src=mac, dst=mac) / IP(src="198.18.0.2", dst="198.18.0.1") / TCP())] + \
        [bytes(Ether(src=mac, dst=mac) / ARP(psrc="198.18.0.1", pdst="198.18.0.2"))]
    path = tmp_path / "stats.cap"
    path.write_bytes(_pcap(frames))
    stats = read_statistics(path)
    assert (stats.packets, dict(stats.protocols)) == (5, {"UDP": 3, "TCP": 1, "ARP": 1})
    top = stats.top_talkers()
    assert [(t.source, t.destination, t.packets, t.bytes) for t in top] == [
        ("198.18.0.1", "198.18.0.2", 3, 3 * len(frames[0])), ("198.18.0.2", "198.18.0.1", 1, len(frames[3]))]
    assert stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_limit_of_zero_means_the_largest_value_arm_allows():
    params = PacketCaptureParameters.model_validate({"target": "t", "storageLocation": {}, "bytesToCapturePerPacket": 64,
                                                     "totalBytesPerSession": 0, "timeLimitInSeconds": 0})
    assert SessionLimits.of(params) == SessionLimits(snaplen=64, byte_limit=4294967295, seconds=18000)
    params.total_bytes_per_session, params.time_limit_in_seconds = 2000, 5
    assert SessionLimits.of(params) == SessionLimits(snaplen=64, byte_limit=2000, seconds=5)
