"""End to end on real parts: the API, RabbitMQ, the control worker, and an agent on each
of two netns VMs. Files are read back with tshark and scapy and compared with what was sent."""

import collections
import secrets
import time
from pathlib import Path

from scapy.utils import rdpcap

from lab.traffic import inbound, outbound, send
from shared.registry import Registry
from shared.resource_ids import CaptureId
from tests.e2e.conftest import tshark_records


def _capture(lab, name: str) -> CaptureId:
    return CaptureId(lab.vm1.vm.subscription, lab.vm1.vm.resource_group, "e2e-watcher",
                     f"{name}-{secrets.token_hex(3)}")


def _start(lab, capture: CaptureId, vm, file_name: str, **properties) -> dict:
    body = {"target": vm.vm.arm_id, "storageLocation": {"filePath": f"/var/captures/e2e/{file_name}"},
            **properties}
    response = lab.client.create(capture, body)
    assert response.status_code == 201, response.text
    return lab.client.wait_for(capture, "Running")


def test_filtered_capture_holds_exactly_the_matching_packets_of_both_directions_on_its_vm(lab):
    vm1, vm2 = lab.vm1, lab.vm2
    capture = _capture(lab, "filters")
    _start(lab, capture, vm1, "filters.cap", timeLimitInSeconds=120,
           filters=[{"protocol": "TCP", "localPort": "8080"}, {"protocol": "UDP", "remotePort": "5353-5360"}])

    def matching(vm):
        return [inbound(vm, "TCP", 40000, 8080), outbound(vm, "TCP", 8080, 40000),
                inbound(vm, "UDP", 5353, 41000), outbound(vm, "UDP", 41000, 5360),
                inbound(vm, "UDP", 5357, 53, payload=40)]

    not_matching = [
        inbound(vm1, "TCP", 40000, 8081), outbound(vm1, "TCP", 8081, 40000),   # other TCP port
        outbound(vm1, "TCP", 40000, 8080),                                       # 8080 is the remote side
        inbound(vm1, "UDP", 9999, 8080),                                         # UDP, not TCP, on 8080
        outbound(vm1, "UDP", 5355, 9999), inbound(vm1, "UDP", 9999, 5355),       # 5355 is the local side
        inbound(vm1, "UDP", 5361, 41000), outbound(vm1, "UDP", 41000, 5352),     # just outside the range
        inbound(vm1, "TCP", 5353, 41000),                                        # TCP, not UDP, from 5353
    ]
    send(vm1, matching(vm1) + not_matching, repeat=4)
    send(vm2, matching(vm2) + not_matching, repeat=4)
    assert lab.client.stop(capture).status_code == 200
    status = lab.client.wait_for(capture, "Stopped", timeout=15)
    assert status["stopReason"] == "ManuallyStopped"

    path = Path(status["packetWatchSummary"]["filePaths"][0])
    expected = collections.Counter(flow.five_tuple for flow in matching(vm1) * 4)
    records = tshark_records(path)
    assert collections.Counter(record[:5] for record in records) == expected
    assert len(rdpcap(str(path))) == sum(expected.values()) == status["packetWatchSummary"]["packets"] == 20
    assert status["packetWatchSummary"]["kernelDrops"] == 0
    assert status["packetWatchSummary"]["bytes"] == path.stat().st_size
    assert not (lab.stack.capture_dir(vm2) / "e2e" / "filters.cap").exists(), "the capture reached the other VM's agent"


def test_time_limit_stops_the_capture_with_time_exceeded(lab):
    capture = _capture(lab, "time")
    running = _start(lab, capture, lab.vm1, "time.cap", timeLimitInSeconds=2)
    assert running["captureStartTime"].endswith("Z")
    started = time.monotonic()
    status = lab.client.wait_for(capture, "Stopped", timeout=20)
    assert status["stopReason"] == "TimeExceeded"
    assert time.monotonic() - started < 10


def test_byte_limit_keeps_the_file_within_total_bytes_per_session(lab):
    capture = _capture(lab, "bytes")
    _start(lab, capture, lab.vm1, "bytes.cap", totalBytesPerSession=2000, timeLimitInSeconds=60,
           filters=[{"protocol": "UDP", "localPort": "7000"}])
    send(lab.vm1, [inbound(lab.vm1, "UDP", 7001, 7000, payload=100)], repeat=60, gap=0.002)
    status = lab.client.wait_for(capture, "Stopped", timeout=20)
    assert status["stopReason"] == "TotalBytesPerSessionExceeded"
    path = Path(status["packetWatchSummary"]["filePaths"][0])
    record = 16 + 14 + 20 + 8 + 100
    assert path.stat().st_size <= 2000
    assert len(tshark_records(path)) == (2000 - 24) // record


def test_bytes_to_capture_per_packet_truncates_and_keeps_the_original_length(lab):
    capture = _capture(lab, "snap")
    _start(lab, capture, lab.vm1, "snap.cap", bytesToCapturePerPacket=64, timeLimitInSeconds=60,
           filters=[{"protocol": "UDP", "localPort": "7100"}])
    send(lab.vm1, [inbound(lab.vm1, "UDP", 7101, 7100, payload=200)], repeat=10)
    lab.client.stop(capture)
    status = lab.client.wait_for(capture, "Stopped", timeout=15)
    records = tshark_records(Path(status["packetWatchSummary"]["filePaths"][0]))
    assert len(records) == 10
    assert {(length, caplen) for *_, length, caplen in records} == {(14 + 20 + 8 + 200, 64)}


def test_stop_is_prompt_and_idempotent_and_delete_keeps_the_file(lab):
    capture = _capture(lab, "stop")
    _start(lab, capture, lab.vm1, "stop.cap", timeLimitInSeconds=600)
    asked = time.monotonic()
    assert lab.client.stop(capture).status_code == 200
    lab.client.wait_for(capture, "Stopped", timeout=15)
    assert time.monotonic() - asked < 5
    status = lab.client.wait_read(capture)  # settled: what its file holds joins the summary just after Stopped
    etag = lab.client.get(capture).json()["etag"]
    assert lab.client.stop(capture).status_code == 200
    assert lab.client.status(capture) == status
    assert lab.client.get(capture).json()["etag"] == etag

    path = Path(status["packetWatchSummary"]["filePaths"][0])
    assert lab.client.delete(capture).status_code == 202
    assert capture.name not in [c["name"] for c in lab.client.list(capture).json()["value"]]
    assert lab.client.get(capture).status_code == 404
    assert path.exists()


def test_delete_of_a_running_capture_stops_it_and_keeps_its_file(lab):
    capture = _capture(lab, "delrun")
    _start(lab, capture, lab.vm1, "delrun.cap", timeLimitInSeconds=600,
           filters=[{"protocol": "UDP", "localPort": "7200"}])
    send(lab.vm1, [inbound(lab.vm1, "UDP", 7201, 7200)], repeat=3)
    registry = Registry.from_url(lab.stack.database_url)
    run_id = registry.get(capture).run_id
    assert _wait_for_runs(registry, lab.vm1, {run_id})
    assert lab.client.delete(capture).status_code == 202
    assert _wait_for_runs(registry, lab.vm1, set()), "the agent still runs the deleted capture"
    send(lab.vm1, [inbound(lab.vm1, "UDP", 7201, 7200)], repeat=2)
    path = lab.stack.capture_dir(lab.vm1) / "e2e" / "delrun.cap"
    assert len(tshark_records(path)) == 3


def _agent_runs(registry: Registry, vm) -> set[str]:
    return {run for agent in registry.list_agents() if agent.vm_id == vm.vm.arm_id for run in agent.running}


def _wait_for_runs(registry: Registry, vm, runs: set[str], timeout: float = 20.0) -> bool:
    """Wait until the agent's heartbeats report exactly `runs` as running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _agent_runs(registry, vm) == runs:
            return True
        time.sleep(0.2)
    return False


def test_a_capture_that_would_overwrite_a_file_ends_in_error_and_the_file_is_untouched(lab):
    first = _capture(lab, "first")
    _start(lab, first, lab.vm1, "same.cap", timeLimitInSeconds=60)
    lab.client.stop(first)
    kept = Path(lab.client.wait_for(first, "Stopped", timeout=15)["packetWatchSummary"]["filePaths"][0])
    before = kept.read_bytes()
    second = _capture(lab, "second")
    response = lab.client.create(second, {"target": lab.vm1.vm.arm_id, "timeLimitInSeconds": 60,
                                          "storageLocation": {"filePath": "/var/captures/e2e/same.cap"}})
    assert response.status_code == 201
    status = lab.client.wait_for(second, "Error", "Stopped", timeout=15)
    assert status["packetCaptureStatus"] == "Error"
    assert status["packetCaptureError"] == ["LocalFileFailed"]
    assert "already exists" in status["packetWatchErrorMessage"]
    assert kept.read_bytes() == before
