"""Scale set fan-out: one capture over N instances (simulated agents: lab/sim_agents.py,
which publish what real agents publish; the API, control worker, broker and registry are
real). Per run: the PUT's answer time (the capture recorded and its N requests confirmed
by the broker), the time until queryStatus shows all N instances Running, and until all
are Stopped after a stop. Medians (min-max) of several runs.
Usage: python -m bench.scale_set [--instances 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cli.arm_client import ArmClient
from lab.sim_agents import simulated_fleet
from shared.arm import PacketCaptureParameters, PacketCaptureStorageLocation, PcStatus, TargetType
from shared.resource_ids import CaptureId, ScaleSetId


def _until(check, what: str, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - began


def one_run(client: ArmClient, scale_set: ScaleSetId, instances: int, index: int) -> dict[str, float]:
    capture = CaptureId(scale_set.subscription, scale_set.resource_group, "bench-watcher", f"fanout-{index}")
    parameters = PacketCaptureParameters(
        target=scale_set.arm_id, target_type=TargetType.AZURE_VMSS, time_limit_in_seconds=600,
        storage_location=PacketCaptureStorageLocation(file_path=f"/var/captures/{capture.name}.cap"))
    began = time.perf_counter()
    client.create(capture, parameters)
    created = time.perf_counter() - began

    def all_are(status: PcStatus) -> Callable[[], bool]:
        return lambda: [i.status for i in client.query_status(capture).instances or []] == [status] * instances

    running = created + _until(all_are(PcStatus.RUNNING), "all Running")
    client.stop(capture)
    stopped = _until(all_are(PcStatus.STOPPED), "all Stopped")
    client.delete(capture)
    return {"created": created, "running": running, "stopped": stopped}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    scale_set = ScaleSetId("00000000-0000-0000-0000-0000000bench", "bench-rg", "bigset")
    vms = [scale_set.instance(str(n)) for n in range(args.instances)]
    try:
        with simulated_fleet(vms, workdir) as stack:
            client = ArmClient(stack.api_url, stack.token)
            runs = [one_run(client, scale_set, args.instances, index) for index in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"scale set fan-out: one capture over {args.instances} instances (simulated agents; real API, control "
          f"worker, broker, SQLite registry), {args.runs} runs, median (min-max):")
    for key, label in (("created", "PUT answered (recorded, N requests confirmed)"),
                       ("running", "all instances Running (from the PUT)"),
                       ("stopped", "all instances Stopped (from the stop)")):
        values = [run[key] * 1000 for run in runs]
        print(f"  {label:46} {statistics.median(values):8.1f} ms ({min(values):.1f}-{max(values):.1f})")
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
