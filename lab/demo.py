"""`packetwatch up`: the whole product on this machine, with real parts and no editing.

Two test VMs (network namespaces), an agent on each, the control worker, the notifier and
the API on the real RabbitMQ, and Azurite for Blob Storage. Then: a capture with filters on
vm1 through the ARM API, uploaded to storage; and an Alertmanager alert that starts a
capture on vm2 by itself. Each file is read back and summarised.
"""

from __future__ import annotations

from typing import Any
import collections
import json
import secrets
import tempfile
from pathlib import Path

import httpx
from scapy.utils import rdpcap

from cli.arm_client import ArmClient
from cli.azurite import ACCOUNT, Azurite
from lab.stack import STORAGE_ID, Stack, temporary_vhost
from lab.traffic import inbound, outbound, send
from lab.vms import LabVm, create_vms, remove_vms
from shared.arm import (
    CaptureSummary, PacketCaptureFilter, PacketCaptureParameters, PacketCaptureStorageLocation, PcProtocol, PcStatus,
)
from shared.resource_ids import CaptureId


def _describe(packet: Any) -> str:  # a scapy Ether
    layer = packet.payload.payload
    return f"{layer.name} {packet.payload.src}:{layer.sport} -> {packet.payload.dst}:{layer.dport}"


def _print_file(path: Path) -> int:
    counts = collections.Counter(_describe(p) for p in rdpcap(str(path)))
    for flow, count in sorted(counts.items()):
        print(f"    {count:3d} x {flow}")
    return sum(counts.values())


def _traffic(vm: LabVm) -> list:
    return [inbound(vm, "TCP", 40000, 8080), outbound(vm, "TCP", 8080, 40000), inbound(vm, "TCP", 40000, 8081),
            inbound(vm, "UDP", 5353, 41000), outbound(vm, "UDP", 41000, 5360), outbound(vm, "UDP", 5355, 9999)]


def _manual_capture(client: ArmClient, vm1: LabVm, vm2: LabVm, seconds: int) -> bool:
    capture = CaptureId(vm1.vm.subscription, vm1.vm.resource_group, "demo-watcher", f"demo-{secrets.token_hex(2)}")
    filters = [PacketCaptureFilter(protocol=PcProtocol.TCP, local_port="8080"),
               PacketCaptureFilter(protocol=PcProtocol.UDP, remote_port="5353-5360")]
    client.create(capture, PacketCaptureParameters(
        target=vm1.vm.arm_id, time_limit_in_seconds=seconds, filters=filters,
        storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID,
                                                      file_path=f"/var/captures/{capture.name}.cap")))
    print(f"1. PUT {capture.name} on {vm1.vm.name}: filters {[f.to_arm() for f in filters]}, {seconds}s, "
          f"storage account {ACCOUNT}")
    client.wait_for(capture, "Running")
    for vm in (vm1, vm2):
        send(vm, _traffic(vm), repeat=5)
    print("   sent 30 packets to/from each VM; 20 of vm1's match the filters")
    status = client.wait_for(capture, "Stopped", "Error", timeout=seconds + 30)
    summary = status.summary or CaptureSummary()
    print(f"   {status.packet_capture_status} ({status.stop_reason}): {summary.packets} packets, "
          f"{summary.bytes} bytes, {summary.kernel_drops} kernel drops, protocols {summary.protocols}")
    try:
        storage_path: str | None = client.wait_stored(capture)
    except TimeoutError:
        storage_path = None
    print(f"   uploaded and verified: {storage_path}")
    kept = _print_file(Path(summary.file_paths[0]))
    return status.packet_capture_status is PcStatus.STOPPED and kept == 20 and storage_path is not None


def _alert_capture(stack: Stack, client: ArmClient, key: str, vm2: LabVm) -> bool:
    alert = {"version": "4", "status": "firing", "receiver": "packetwatch", "groupKey": "demo",
             "alerts": [{"status": "firing", "fingerprint": "demo",
                         "labels": {"alertname": "HighPacketLoss", "vm_resource_id": vm2.vm.arm_id}}]}
    answer = httpx.post(f"{stack.api_url}/api/alerts?code={key}", json=alert, timeout=10)
    started = answer.json()["started"][0]
    print(f"2. Alertmanager alert HighPacketLoss for {vm2.vm.name}: HTTP {answer.status_code}, "
          f"capture {started['name']}")
    again = httpx.post(f"{stack.api_url}/api/alerts?code={key}", json=alert, timeout=10)
    print(f"   the same alert again: HTTP {again.status_code}, {again.json()['reason']}")
    capture = CaptureId.parse(started["id"])
    client.wait_for(capture, "Running")
    send(vm2, _traffic(vm2), repeat=2)
    client.stop(capture)
    summary = client.wait_for(capture, "Stopped", timeout=30).summary or CaptureSummary()
    print(f"   stopped: {summary.packets} packets of {vm2.vm.name}'s traffic")
    return _print_file(Path(summary.file_paths[0])) == 12


def run_demo(seconds: int = 6) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-demo-"))
    key = secrets.token_urlsafe(24)
    azurite = Azurite(workdir)
    azurite.start()
    (workdir / "storage.json").write_text(json.dumps({"accounts": {ACCOUNT: {
        "connectionString": azurite.connection_string}}}))
    (workdir / "alerts.json").write_text(json.dumps({"functionKeys": [key],
                                                     "defaultTemplate": {"timeLimitInSeconds": 120}}))
    vms = create_vms(2)
    try:
        with temporary_vhost() as broker_url:
            stack = Stack(broker_url, f"sqlite:///{workdir}/registry.db", workdir, extra_env={
                "PACKETWATCH_STORAGE_CONFIG": str(workdir / "storage.json"),
                "PACKETWATCH_ALERT_CONFIG": str(workdir / "alerts.json")})
            try:
                stack.start_api()
                for vm in vms:
                    stack.start_agent(vm)
                print(f"API {stack.api_url}, Azurite 127.0.0.1:{azurite.port}, VMs "
                      + ", ".join(f"{vm.vm.name} ({vm.address})" for vm in vms) + f"; logs in {workdir}")
                client = ArmClient(stack.api_url, stack.token)
                manual_ok = _manual_capture(client, vms[0], vms[1], seconds)
                alert_ok = _alert_capture(stack, client, key, vms[1])
                ok = manual_ok and alert_ok
                print("demo: OK" if ok else "demo: FAILED")
                return 0 if ok else 1
            finally:
                stack.stop_all()
    finally:
        remove_vms(vms)
        azurite.stop()
