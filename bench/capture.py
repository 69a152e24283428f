"""Capture throughput: the agent's engine against tcpdump, same filter, same burst, same run;
and the engine in continuous capture (a ring of small files) beside them.

A burst of UDP packets (80% matching) is replayed with `tcpreplay --topspeed` onto a lab
VM's veth while both capture on the VM's side. For each: packets matching, captured,
kernel drops, and CPU seconds per million captured packets: user+system time, for tcpdump
its whole process (wait4), for the agent's engine from the moment it captures (the Python
interpreter's start-up is shown apart). Several runs; medians are reported with the ratio agent/tcpdump.
Usage: python -m bench.capture [--packets N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.traffic import inbound
from shared.arm import PacketCaptureFilter
from shared.bpf import compile_filters
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from lab.vms import LabVm, create_vms, remove_vms

FILTERS = [{"protocol": "UDP", "localPort": "5353"}]


RING_FILE_BYTES = 256 * 1024


def write_burst(vm: LabVm, path: Path, packets: int) -> int:
    """A pcap of `packets` frames, 4 of every 5 matching FILTERS; returns how many match."""
    hit = inbound(vm, "UDP", 40000, 5353, payload=18).frame(vm)
    miss = inbound(vm, "UDP", 40000, 5354, payload=18).frame(vm)
    matching = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for index in range(packets):
            frame = miss if index % 5 == 4 else hit
            matching += frame is hit
            out.write(struct.pack("<IIII", index // 1_000_000, index % 1_000_000, len(frame), len(frame)))
            out.write(frame)
    return matching


def count_records(path: Path) -> int:
    count, data = 0, path.read_bytes()
    offset = 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        offset += 16 + caplen
        count += 1
    return count


def _cpu_of(process: subprocess.Popen) -> float:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _engine(vm: LabVm, out: Path, *options: str) -> subprocess.Popen:
    engine = subprocess.Popen(
        [sys.executable, "-m", "bench.engine_capture", "--netns", vm.netns, "--interface", vm.vm_if,
         "--filters", json.dumps(FILTERS), "--out", str(out), *options], stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None and engine.stdout.readline().strip() == "running"
    return engine


def _engine_result(engine: subprocess.Popen, captured: int) -> dict:
    process_cpu = _cpu_of(engine)
    report = json.loads(engine.stdout.read().strip().splitlines()[-1])
    return {"captured": captured, "drops": report["drops"], "cpu": report["capture_cpu"], "process_cpu": process_cpu}


def one_run(vm: LabVm, burst: Path, workdir: Path, expression: str) -> dict[str, dict]:
    engine_file, tcpdump_file = workdir / "engine.cap", workdir / "tcpdump.cap"
    for stale in (engine_file, tcpdump_file, *workdir.glob("ring_*.cap")):
        stale.unlink(missing_ok=True)
    engine = _engine(vm, engine_file)
    ring = _engine(vm, workdir / "ring.cap", "--ring-file-bytes", str(RING_FILE_BYTES))
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", vm.netns, "tcpdump", "-i", vm.vm_if, "-p", "-n", "-s", "0", "-B", "65536",
         "-w", str(tcpdump_file), expression], stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    replay = subprocess.run(["tcpreplay", "--topspeed", "-i", vm.host_if, str(burst)], check=True,
                            capture_output=True, text=True, timeout=300)
    rate = re.search(r"([\d.]+) pps", replay.stdout)
    time.sleep(1.0)
    tcpdump.send_signal(signal.SIGINT)
    engine.send_signal(signal.SIGTERM)
    ring.send_signal(signal.SIGTERM)
    tcpdump_cpu = _cpu_of(tcpdump)
    ring_files = sorted(workdir.glob("ring_*.cap"))
    tcpdump_err = tcpdump.stderr.read() if tcpdump.stderr else ""
    drops = next((int(line.split()[0]) for line in tcpdump_err.splitlines() if "dropped by kernel" in line), -1)
    return {
        "pps": float(rate.group(1)) if rate else 0.0,
        "agent": _engine_result(engine, count_records(engine_file)),
        "ring": {**_engine_result(ring, sum(count_records(path) for path in ring_files)), "files": len(ring_files)},
        "tcpdump": {"captured": count_records(tcpdump_file), "drops": drops, "cpu": tcpdump_cpu,
                    "process_cpu": tcpdump_cpu},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    [vm] = create_vms(1)
    try:
        burst = workdir / "burst.pcap"
        matching = write_burst(vm, burst, args.packets)
        expression = compile_filters(parse_filters([PacketCaptureFilter.model_validate(f) for f in FILTERS]),
                                     AddressSet.of([vm.address])).expression
        runs = [one_run(vm, burst, workdir, expression) for _ in range(args.runs)]
    finally:
        remove_vms([vm])
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"burst: {args.packets} UDP packets, {matching} matching ({matching / args.packets:.0%}), "
          f"tcpreplay --topspeed, {args.runs} runs, medians; filter {FILTERS}")
    print(f"{'capturer':10} {'matching':>9} {'captured':>9} {'kept':>7} {'drops':>7} {'CPU s/Mpkt':>11} "
          f"{'with start-up':>14}")
    medians = {}
    for name in ("agent", "ring", "tcpdump"):
        captured = statistics.median(r[name]["captured"] for r in runs)
        drops = statistics.median(r[name]["drops"] for r in runs)
        cpu = statistics.median(r[name]["cpu"] / max(r[name]["captured"], 1) * 1e6 for r in runs)
        whole = statistics.median(r[name]["process_cpu"] / max(r[name]["captured"], 1) * 1e6 for r in runs)
        medians[name] = cpu
        print(f"{name:10} {matching:9d} {captured:9.0f} {captured / matching:7.2%} {drops:7.0f} {cpu:11.3f} "
              f"{whole:14.3f}")
    print(f"replay rate (median): {statistics.median(r['pps'] for r in runs):,.0f} packets/s")
    print(f"agent/tcpdump CPU per packet, live: {medians['agent'] / medians['tcpdump']:.2f}x (the agent's capture CPU, "
          "without its interpreter start-up; tcpdump's whole process). Not a capacity figure: the kernel charges "
          "receive work to whichever process runs; bench.drain measures capacity")
    print(f"ring: continuous capture into files of {RING_FILE_BYTES} bytes, "
          f"{statistics.median(r['ring']['files'] for r in runs):.0f} files a run; ring/classic CPU per packet: "
          f"{medians['ring'] / medians['agent']:.2f}x")
    print("per run (agent captured/drops/capture cpu s, tcpdump captured/drops/cpu s):")
    for r in runs:
        a, t = r["agent"], r["tcpdump"]
        print(f"  {a['captured']}/{a['drops']}/{a['cpu']:.2f}  {t['captured']}/{t['drops']}/{t['cpu']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
