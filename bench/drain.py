"""Capture capacity as a drain test: the agent's engine against tcpdump, same filter, same
burst, same 64 MiB kernel ring, same run.

Each capturer is paused (SIGSTOP) while the burst is replayed, so the kernel's receive and
filter work is done, and charged, before it runs; then it is resumed and its own CPU time is
measured until the ring is empty (its CPU time stops moving). That is the work of taking
packets from the ring and writing them, and nothing else: a live test instead charges
receive work to whichever process is running, which flatters the capturer that sleeps most.
Every packet must be in the file with no kernel drop, or the run does not count.
Usage: python -m bench.drain [--packets N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.capture import FILTERS, _engine, count_records, write_burst
from lab.vms import LabVm, create_vms, remove_vms
from shared.arm import PacketCaptureFilter
from shared.bpf import compile_filters
from shared.filter_values import AddressSet
from shared.filters import parse_filters

SETTLED = 0.2  # seconds in a window
IDLE_CPU = 0.002  # CPU seconds a capturer with an empty ring may use in one window


def cpu_seconds(pid: int) -> float:
    """Time on CPU of a process's threads, to the nanosecond (the scheduler's own count,
    /proc/PID/task/*/schedstat; /proc's user and system times tick at 100 Hz)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total / 1e9


def drain(process: subprocess.Popen, vm: LabVm, burst: Path) -> float:
    """Pause, fill the ring, resume: the CPU seconds it takes to empty the ring."""
    process.send_signal(signal.SIGSTOP)
    subprocess.run(["tcpreplay", "--topspeed", "-i", vm.host_if, str(burst)], check=True, capture_output=True,
                   timeout=300)
    time.sleep(0.2)
    before = cpu_seconds(process.pid)
    process.send_signal(signal.SIGCONT)
    last = before
    while True:  # drained once a whole window passes with (next to) no CPU used: polling for more costs microseconds
        time.sleep(SETTLED)
        now = cpu_seconds(process.pid)
        if now - last < IDLE_CPU:
            break
        last = now
    return last - before


def one_run(vm: LabVm, burst: Path, workdir: Path, expression: str) -> dict[str, dict]:
    engine_file, tcpdump_file = workdir / "engine.cap", workdir / "tcpdump.cap"
    for stale in (engine_file, tcpdump_file):
        stale.unlink(missing_ok=True)
    engine = _engine(vm, engine_file)
    engine_cpu = drain(engine, vm, burst)
    engine.send_signal(signal.SIGTERM)
    engine.wait(30)
    engine_report = engine.stdout.read().strip().splitlines()[-1] if engine.stdout else "{}"
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", vm.netns, "tcpdump", "-i", vm.vm_if, "-p", "-n", "-s", "0", "-B", "65536",
         "-w", str(tcpdump_file), expression], stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    tcpdump_cpu = drain(tcpdump, vm, burst)
    tcpdump.send_signal(signal.SIGINT)
    tcpdump.wait(30)
    errors = tcpdump.stderr.read() if tcpdump.stderr else ""
    tcpdump_drops = next((int(line.split()[0]) for line in errors.splitlines() if "dropped by kernel" in line), -1)
    return {"agent": {"captured": count_records(engine_file), "drops": json.loads(engine_report)["drops"],
                      "cpu": engine_cpu},
            "tcpdump": {"captured": count_records(tcpdump_file), "drops": tcpdump_drops,
                        "cpu": tcpdump_cpu}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-drain-"))
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
    whole = [run for run in runs if all(run[name]["captured"] == matching and run[name]["drops"] == 0
                                        for name in ("agent", "tcpdump"))]
    print(f"drain test: {args.packets} UDP packets replayed into a paused capturer's 64 MiB ring, {matching} "
          f"matching {FILTERS}; {len(whole)} of {args.runs} runs with every packet kept and no kernel drop")
    for run in runs:
        print("  " + "   ".join(f"{name} {run[name]['captured']} kept, {run[name]['drops']} dropped, "
                                f"{run[name]['cpu'] * 1000:.1f} CPU ms" for name in ("agent", "tcpdump")))
    if not whole:
        return 1
    rate = {name: [matching / run[name]["cpu"] for run in whole] for name in ("agent", "tcpdump")}
    ratios = [run["tcpdump"]["cpu"] / run["agent"]["cpu"] for run in whole]
    for name in ("agent", "tcpdump"):
        print(f"{name:8} {statistics.median(rate[name]) / 1e6:.2f} M packets per CPU-second "
              f"(min {min(rate[name]) / 1e6:.2f}, max {max(rate[name]) / 1e6:.2f})")
    print(f"agent/tcpdump packets per CPU-second: {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; CPU time as the scheduler counts it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
