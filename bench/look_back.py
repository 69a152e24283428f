"""The look-back ring's standing cost and its bound: the agent's ring against tcpdump's own
ring of files (-C/-W, the same spool size), both capturing everything on one lab VM while
a sustained flood (several tcpreplay --topspeed bursts, many times the spool) passes.

Reported per capturer: packets captured (kernel counters), kernel drops, CPU seconds per
million packets (the ring from the moment it captures; tcpdump's whole process), and for
the ring: its RSS at start and at most during the flood, the most spool it held against
its bound, and its CPU while no packet passes (its cost when idle). Medians of several runs.
Usage: python -m bench.look_back [--packets N] [--bursts N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.capture import write_burst
from lab.vms import LabVm, create_vms, remove_vms

SPOOL_BYTES = 16_000_000  # tcpdump -C counts in millions of bytes: 16 files of 1,000,000
IDLE_SECONDS = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _folder_bytes(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())


class Sampler(threading.Thread):
    """The ring's RSS and spool size, ten times a second, until stopped."""

    def __init__(self, pid: int, spool: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.spool = pid, spool
        self.max_rss = self.max_spool = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                self.max_rss = max(self.max_rss, _rss_kib(self.pid))
                self.max_spool = max(self.max_spool, _folder_bytes(self.spool))
            except (FileNotFoundError, ProcessLookupError):
                return


def one_run(vm: LabVm, burst: Path, bursts: int, workdir: Path) -> dict:
    spool, tcpdump_dir = workdir / "spool", workdir / "tcpdump-ring"
    for folder in (spool, tcpdump_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    ring = subprocess.Popen([sys.executable, "-m", "bench.engine_look_back", "--netns", vm.netns, "--interface",
                             vm.vm_if, "--spool", str(spool), "--spool-bytes", str(SPOOL_BYTES)],
                            stdout=subprocess.PIPE, text=True)
    assert ring.stdout is not None and ring.stdout.readline().strip() == "running"
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", vm.netns, "tcpdump", "-i", vm.vm_if, "-p", "-n", "-s", "0", "-B", "16384",
         "-Z", "root", "-w", str(tcpdump_dir / "ring.pcap"), "-C", str(SPOOL_BYTES // 16 // 1_000_000), "-W", "16"],
        stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    start_rss = _rss_kib(ring.pid)
    idle_before = _cpu_seconds(ring.pid)
    time.sleep(IDLE_SECONDS)
    idle_cpu = (_cpu_seconds(ring.pid) - idle_before) / IDLE_SECONDS
    sampler = Sampler(ring.pid, spool)
    sampler.start()
    for _ in range(bursts):
        subprocess.run(["tcpreplay", "--topspeed", "-i", vm.host_if, str(burst)], check=True, capture_output=True,
                       timeout=300)
    time.sleep(1.0)
    sampler.done.set()
    sampler.join()
    ring.send_signal(signal.SIGTERM)
    tcpdump.send_signal(signal.SIGINT)
    ring_cpu_process = _wait_cpu(ring)
    report = json.loads(ring.stdout.read().strip().splitlines()[-1])
    tcpdump_cpu = _wait_cpu(tcpdump)
    err = tcpdump.stderr.read() if tcpdump.stderr else ""
    captured = re.search(r"(\d+) packets captured", err)
    dropped = re.search(r"(\d+) packets dropped by kernel", err)
    tcpdump_spool = _folder_bytes(tcpdump_dir)
    return {
        "ring": {"captured": report["received"] - report["dropped"], "drops": report["dropped"],
                 "cpu": report["capture_cpu"], "process_cpu": ring_cpu_process, "start_rss": start_rss,
                 "max_rss": sampler.max_rss, "max_spool": sampler.max_spool, "idle_cpu": idle_cpu},
        "tcpdump": {"captured": int(captured.group(1)) if captured else 0,
                    "drops": int(dropped.group(1)) if dropped else -1, "cpu": tcpdump_cpu, "spool": tcpdump_spool},
    }


def _wait_cpu(process: subprocess.Popen) -> float:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=250_000, help="packets per burst")
    parser.add_argument("--bursts", type=int, default=4, help="bursts per run (the flood)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    [vm] = create_vms(1)
    try:
        burst = workdir / "burst.pcap"
        write_burst(vm, burst, args.packets)
        flood = burst.stat().st_size * args.bursts
        runs = [one_run(vm, burst, args.bursts, workdir) for _ in range(args.runs)]
    finally:
        remove_vms([vm])
        shutil.rmtree(workdir, ignore_errors=True)
    med = lambda name, key: statistics.median(r[name][key] for r in runs)  # noqa: E731
    per_mpkt = {name: statistics.median(r[name]["cpu"] / max(r[name]["captured"], 1) * 1e6 for r in runs)
                for name in ("ring", "tcpdump")}
    spread = {name: [r[name]["cpu"] / max(r[name]["captured"], 1) * 1e6 for r in runs] for name in per_mpkt}
    print(f"look-back ring vs tcpdump -C/-W: {args.bursts} bursts of {args.packets} packets "
          f"({flood / 1e6:.0f} MB of pcap, {flood / SPOOL_BYTES:.0f}x the spool), {args.runs} runs, medians")
    print(f"{'capturer':10} {'captured':>9} {'drops':>7} {'CPU s/Mpkt':>11} {'min-max':>13}")
    for name in ("ring", "tcpdump"):
        print(f"{name:10} {med(name, 'captured'):9.0f} {med(name, 'drops'):7.0f} {per_mpkt[name]:11.3f} "
              f"{min(spread[name]):6.3f}-{max(spread[name]):<6.3f}")
    print(f"ring/tcpdump CPU per packet: {per_mpkt['ring'] / per_mpkt['tcpdump']:.2f}x")
    print(f"ring spool: at most {med('ring', 'max_spool') / 1e6:.1f} MB held, bound {SPOOL_BYTES / 1e6:.1f} MB "
          f"({'held' if all(r['ring']['max_spool'] <= SPOOL_BYTES for r in runs) else 'EXCEEDED'}); "
          f"tcpdump's ring {med('tcpdump', 'spool') / 1e6:.1f} MB")
    print(f"ring RSS: {med('ring', 'start_rss') / 1024:.1f} MiB at start, at most "
          f"{med('ring', 'max_rss') / 1024:.1f} MiB during the flood (its kernel buffer: 16 MiB)")
    print(f"ring CPU while no packet passes: {med('ring', 'idle_cpu') * 100:.2f}% of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
