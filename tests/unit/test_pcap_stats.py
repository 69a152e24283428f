"""The statistics pass at fleet speed counts exactly what a packet library reads in the file:
IPv4 and IPv6 (fast path), VLAN-tagged, ARP and truncated records (classified one by one),
records cut across the pass's read chunks, and a torn tail (hashed, not counted)."""

import hashlib
import random
import struct
from collections import Counter

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import rdpcap

from workers.capture import pcap_stats
from workers.capture.pcap_stats import read_statistics

MAC = "02:00:00:00:00:01"


def _frames(rng: random.Random) -> list[bytes]:
    kinds = [
        lambda: Ether(src=MAC, dst=MAC) / IP(src=f"198.18.0.{rng.randrange(1, 9)}", dst="198.18.1.1",
                                             id=rng.getrandbits(16)) / TCP() / (b"x" * rng.randrange(0, 1400)),
        lambda: Ether(src=MAC, dst=MAC) / IP(src="198.18.0.9", dst=f"198.18.1.{rng.randrange(1, 4)}",
                                             proto=47) / (b"g" * 20),
        lambda: Ether(src=MAC, dst=MAC) / IPv6(src="2001:db8::1", dst=f"2001:db8::{rng.randrange(2, 5)}") /
        UDP() / (b"y" * rng.randrange(0, 300)),
        lambda: Ether(src=MAC, dst=MAC) / Dot1Q(vlan=5) / IP(src="198.18.0.1", dst="198.18.1.1") / UDP(),
        lambda: Ether(src=MAC, dst=MAC) / ARP(psrc="198.18.0.1", pdst="198.18.0.2"),
    ]
    return [bytes(rng.choice(kinds)()) for _ in range(3000)]


def _expected(path) -> tuple[Counter, Counter, Counter]:
    protocols, talker_bytes, talker_packets = Counter(), Counter(), Counter()
    for packet in rdpcap(str(path)):
        layer = packet[IP] if IP in packet else packet[IPv6] if IPv6 in packet else None
        if layer is None:
            protocols["ARP" if ARP in packet else "other"] += 1
            continue
        number = layer.proto if IP in packet else layer.nh
        protocols[{6: "TCP", 17: "UDP", 47: "GRE"}.get(number, f"{'IP' if IP in packet else 'IPv6'}/{number}")] += 1
        talker_bytes[(layer.src, layer.dst)] += packet.wirelen
        talker_packets[(layer.src, layer.dst)] += 1
    return protocols, talker_bytes, talker_packets


def test_the_fast_pass_counts_what_scapy_reads_across_chunk_boundaries(tmp_path, monkeypatch):
    frames = _frames(random.Random(3))
    records = b"".join(struct.pack("<IIII", 1, n, len(f), len(f)) + f for n, f in enumerate(frames))
    cut = frames[0][:30]  # snap length 30: too short for an IP header, classified on its own
    records += struct.pack("<IIII", 2, 0, len(cut), 1000) + cut
    path = tmp_path / "mixed.cap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    monkeypatch.setattr(pcap_stats, "CHUNK_BYTES", 4099)  # records straddle many reads
    stats = read_statistics(path)
    protocols, talker_bytes, talker_packets = _expected(path)
    assert stats.packets == len(frames) + 1
    assert dict(stats.protocols) == dict(protocols)
    assert dict(stats.talkers) == dict(talker_bytes) and dict(stats.talker_packets) == dict(talker_packets)
    assert stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    torn = tmp_path / "torn.cap"
    torn.write_bytes(path.read_bytes()[:-7])
    stats = read_statistics(torn)
    assert stats.packets == len(frames), "the torn last record is not counted"
    assert stats.sha256 == hashlib.sha256(torn.read_bytes()).hexdigest(), "but it is part of the file's digest"


def test_counting_ends_at_a_record_longer_than_any_snap_length_and_the_digest_covers_the_file(tmp_path, monkeypatch):
    frames = _frames(random.Random(5))
    records = b"".join(struct.pack("<IIII", 1, n, len(f), len(f)) + f for n, f in enumerate(frames))
    corrupt = struct.pack("<IIII", 2, 0, 1 << 30, 1 << 30)  # a caplen no capture writes
    path = tmp_path / "corrupt.cap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records + corrupt + records * 40)
    monkeypatch.setattr(pcap_stats, "CHUNK_BYTES", 4099)
    stats = read_statistics(path)
    assert stats.packets == len(frames), "nothing after the corrupt record is counted"
    assert stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
