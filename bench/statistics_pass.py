"""The end-of-capture statistics pass (protocols, top talkers, SHA-256: what an agent reads
from a capture file once it has reported Stopped) per packet, on a file like a VM's traffic:
2,000 TCP and UDP flows over IPv4 and IPv6 (IP IDs and checksums changing packet to packet),
60-1,514 byte frames. Reference, in the same run: hashing the same file alone (hashlib's SHA-256, the
floor of any pass that proves the file). Wall and CPU time per packet, medians (min-max);
then the time per file for a small file (a continuous capture's files are read one by one).
Nothing is left in the temp dir.
Usage: python -m bench.statistics_pass [--packets 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from workers.capture.pcap_stats import read_statistics

SMALL_PACKETS = 500
ETHERNET = bytes.fromhex("020000000001020000000002")


def _frame(rng: random.Random, flow: int) -> bytes:
    size = rng.choice((60, 60, 120, 576, 1514))
    ident = rng.getrandbits(16)
    if flow % 20 == 0:  # IPv6
        payload = max(0, size - 14 - 40)
        header = struct.pack("!IHBB", 0x60000000, payload, 17 if flow % 3 else 6, 64) + \
            bytes.fromhex("20010db8000000000000000000000000")[:15] + bytes([flow % 256]) + \
            bytes.fromhex("20010db8000000000000000000000001")
        return ETHERNET + b"\x86\xdd" + header + bytes(payload)
    payload = max(0, size - 14 - 20)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload, ident, 0, 64, 6 if flow % 3 else 17,
                         rng.getrandbits(16), bytes([198, 18, flow // 256 % 2, flow % 256]), bytes([198, 19, 0, 1]))
    return ETHERNET + b"\x08\x00" + header + bytes(payload)


def make_file(path: Path, packets: int) -> None:
    rng = random.Random(7)
    frames = [_frame(rng, rng.randrange(2000)) for _ in range(4096)]
    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for n in range(packets):
            frame = frames[n % 4096]
            handle.write(struct.pack("<IIII", 1_700_000_000 + n // 100_000, n % 1_000_000, len(frame), len(frame)))
            handle.write(frame)


def timed(action) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def sha256_only(path: Path) -> None:
    with path.open("rb") as handle:
        hashlib.file_digest(handle, "sha256")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    try:
        path = workdir / "capture.cap"
        make_file(path, args.packets)
        size = path.stat().st_size
        found = read_statistics(path)
        assert found.packets == args.packets and found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        ours = [timed(lambda: read_statistics(path)) for _ in range(args.runs)]
        floor = [timed(lambda: sha256_only(path)) for _ in range(args.runs)]
        small = workdir / "ring-file.cap"  # the size of a continuous capture's file: each is read on its own
        make_file(small, SMALL_PACKETS)
        small_size = small.stat().st_size
        small_ours = [timed(lambda: [read_statistics(small) for _ in range(100)]) for _ in range(args.runs)]
        small_floor = [timed(lambda: [sha256_only(small) for _ in range(100)]) for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    per = lambda seconds: seconds / args.packets * 1e6  # noqa: E731 (µs per packet)
    print(f"statistics pass over {args.packets:,} packets ({size / 2**20:.0f} MiB), {args.runs} runs, median (min-max) "
          f"µs per packet:")
    for label, results in (("protocols + top talkers + SHA-256", ours), ("SHA-256 alone (reference)", floor)):
        walls, cpus = [per(w) for w, _ in results], [per(c) for _, c in results]
        print(f"  {label:36} wall {statistics.median(walls):.3f} ({min(walls):.3f}-{max(walls):.3f})  "
              f"cpu {statistics.median(cpus):.3f} ({min(cpus):.3f}-{max(cpus):.3f})")
    per_file = [wall * 10 for wall, _ in small_ours]  # ms per file: 100 files a run
    print(f"  a {small_size / 1000:.0f} KB file ({SMALL_PACKETS} packets), ms per file: "
          f"{statistics.median(per_file):.2f} ({min(per_file):.2f}-{max(per_file):.2f}); SHA-256 alone "
          f"{statistics.median(wall * 10 for wall, _ in small_floor):.2f}")
    print(json.dumps({"wall_us": [per(w) for w, _ in ours], "cpu_us": [per(c) for _, c in ours],
                      "sha256_wall_us": [per(w) for w, _ in floor], "small_file_ms": per_file}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
