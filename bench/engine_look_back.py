"""Run the agent's standing look-back ring alone, as its own process, for the benchmark:
`python -m bench.engine_look_back --netns NS --interface IF --spool DIR --spool-bytes B`.
Prints "running" once it captures; on SIGTERM prints its figures as JSON: CPU time from
the moment it captured (start-up excluded), kernel counters, and the spool it holds."""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import threading
from pathlib import Path

from shared.bpf import compile_filters
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from workers.agent.look_back import KERNEL_BUFFER_BYTES
from workers.capture.live_source import LiveCapture, interface_addresses
from workers.capture.look_back import LookBackRing, LookBackSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--netns", required=True)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--spool-bytes", type=int, required=True)
    parser.add_argument("--seconds", type=int, default=300)
    args = parser.parse_args()
    settings = LookBackSettings(args.seconds, args.spool_bytes, 0, Path(args.spool))
    program = compile_filters(parse_filters([]), AddressSet.of(interface_addresses(args.interface, args.netns)))
    source = LiveCapture(args.interface, program, 0, args.netns, buffer_bytes=KERNEL_BUFFER_BYTES)
    ring = LookBackRing(settings, source)
    stop = threading.Event()
    figures: dict[str, int] = {}

    def on_term(*_: object) -> None:
        # Runs on the main thread between two steps of the ring: its source is not in use.
        figures.update(ring.source.counters().__dict__)
        figures["held_bytes"] = sum(entry.stat().st_size for entry in os.scandir(args.spool))
        figures["files_dropped"] = ring.dropped_files
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    started = _cpu()
    print("running", flush=True)
    ring.run(stop)
    print(json.dumps({"capture_cpu": _cpu() - started, **figures}), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
