"""`packetwatch up`: the whole product on this machine, with real parts and no editing.

Two test VMs (network namespaces), an agent on each, the control worker and the API, all
on the real RabbitMQ; one capture with filters on vm1 while both VMs see traffic; then a
summary of what the capture holds, read back from the file.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

from scapy.utils import rdpcap

from lab.arm_client import ArmClient
from lab.stack import Stack, temporary_vhost
from lab.traffic import inbound, outbound, send
from lab.vms import create_vms, remove_vms
from shared.resource_ids import CaptureId


def _describe(packet) -> str:  # type: ignore[no-untyped-def]
    layer = packet.payload.payload
    return f"{layer.name} {packet.payload.src}:{layer.sport} -> {packet.payload.dst}:{layer.dport}"


def run_demo(seconds: int = 6) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-demo-"))
    vms = create_vms(2)
    vm1, vm2 = vms
    try:
        with temporary_vhost() as broker_url:
            stack = Stack(broker_url, f"sqlite:///{workdir}/registry.db", workdir)
            try:
                stack.start_api()
                for vm in vms:
                    stack.start_agent(vm)
                client = ArmClient(stack.api_url)
                capture = CaptureId(vm1.vm.subscription, vm1.vm.resource_group, "demo-watcher", "demo-capture")
                filters = [{"protocol": "TCP", "localPort": "8080"},
                           {"protocol": "UDP", "remotePort": "5353-5360"}]
                print(f"API {stack.api_url}; VMs {vm1.vm.name} ({vm1.address}) and {vm2.vm.name} ({vm2.address})")
                response = client.create(capture, {"target": vm1.vm.arm_id, "timeLimitInSeconds": seconds,
                                                   "storageLocation": {"filePath": "/var/captures/demo.cap"},
                                                   "filters": filters})
                response.raise_for_status()
                print(f"created {capture.name} on {vm1.vm.name}: filters {filters}, time limit {seconds}s")
                client.wait_for(capture, "Running")
                for vm in vms:
                    send(vm, [inbound(vm, "TCP", 40000, 8080), outbound(vm, "TCP", 8080, 40000),
                              inbound(vm, "TCP", 40000, 8081), inbound(vm, "UDP", 5353, 41000),
                              outbound(vm, "UDP", 41000, 5360), outbound(vm, "UDP", 5355, 9999)], repeat=5)
                print("sent 30 packets to/from each VM (20 of vm1's match the filters)")
                status = client.wait_for(capture, "Stopped", "Error", timeout=seconds + 30)
                summary = status.get("packetWatchSummary", {})
                print(f"status {status['packetCaptureStatus']}, stop reason {status.get('stopReason')}, "
                      f"{summary.get('packets')} packets, {summary.get('bytes')} bytes, "
                      f"{summary.get('kernelDrops')} kernel drops")
                path = Path(summary["filePaths"][0])
                counts = collections.Counter(_describe(p) for p in rdpcap(str(path)))
                print(f"file {path} (sha256 {summary.get('sha256')}):")
                for flow, count in sorted(counts.items()):
                    print(f"  {count:3d} x {flow}")
                return 0 if status["packetCaptureStatus"] == "Stopped" and sum(counts.values()) == 20 else 1
            finally:
                stack.stop_all()
    finally:
        remove_vms(vms)
