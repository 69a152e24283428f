"""Run the agent's capture engine alone, as its own process, for the benchmark:
`python -m bench.engine_capture --netns NS --interface IF --filters JSON --out FILE`.
Stops on SIGTERM and prints its outcome as JSON, with the CPU time spent from the moment
it captures (interpreter start-up and imports excluded; tcpdump, in C, has next to none)."""

from __future__ import annotations

import argparse
import json
import resource
import signal
from pathlib import Path

from shared.arm import PacketCaptureFilter, StopReason
from shared.bpf import compile_filters
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from workers.capture.live_source import LiveCapture, interface_addresses
from workers.capture.pcap_sink import PcapFileSink
from workers.capture.ring_sink import RingLayout, RingSink
from workers.capture.session import SessionLimits, StopSignal, run_session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--netns", required=True)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--filters", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ring-file-bytes", type=int, default=0,
                        help="continuous capture: files OUT_00001.cap, … of at most this size (default: one file)")
    args = parser.parse_args()
    specs = parse_filters([PacketCaptureFilter.model_validate(f) for f in json.loads(args.filters)])
    program = compile_filters(specs, AddressSet.of(interface_addresses(args.interface, args.netns)))
    stop = StopSignal()
    signal.signal(signal.SIGTERM, lambda *_: stop.set(StopReason.MANUALLY_STOPPED))
    ready: list[float] = []

    def running(_started: object) -> None:
        ready.append(_cpu())
        print("running", flush=True)

    limits = SessionLimits(0, 0xFFFFFFFF, 600)
    source = LiveCapture(args.interface, program, limits.snaplen, args.netns)
    out = Path(args.out)
    if args.ring_file_bytes:
        layout = RingLayout(out.parent, lambda index: f"{out.stem}_{index:05d}.cap", args.ring_file_bytes,
                            count=1_000_000, rolling=False)
        sink: PcapFileSink | RingSink = RingSink(layout, source.linktype, source.snaplen)
    else:
        sink = PcapFileSink.create(out.parent, out.name, source.linktype, source.snaplen, limits.byte_limit)
    outcome = run_session(source, sink, limits, stop, running)
    print(json.dumps({"packets": outcome.packets, "drops": outcome.kernel_drops, "bytes": outcome.file_bytes,
                      "capture_cpu": _cpu() - ready[0], "expression": program.expression}), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
