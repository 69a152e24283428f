"""Look-back on a netns VM whose agent keeps a standing ring: a capture's file begins with
the matching packets from before it was asked for and goes on with live ones, read back
with tshark packet for packet (numbered by source port): a steady stream that crosses the
hand-over arrives whole, in order, none twice; an alert fired after known traffic finds
that traffic in its capture; an agent without a ring says so."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.traffic import inbound, send
from lab.vms import LabVm, create_vms, remove_vms
from shared.resource_ids import CaptureId
from tests import alert_samples as s
from tests.e2e.conftest import FUNCTION_KEY, LOOK_BACK_PORT, LOOK_BACK_RULE

PORT = 7300
OTHER_PORT = 7301


@pytest.fixture(scope="module")
def look_back_vm(lab, tmp_path_factory) -> Iterator[LabVm]:
    """A VM whose agent keeps the last 60 s of UDP (at most 8 MiB, in 512 KiB files)."""
    [vm] = create_vms(1)
    spool = tmp_path_factory.mktemp("look-back")
    try:
        lab.stack.start_agent(vm, "--look-back-seconds", "60", "--look-back-bytes", str(8 * 1024 * 1024),
                              "--look-back-snaplen", "512", "--look-back-dir", str(spool),
                              "--look-back-filters", '[{"protocol": "UDP"}]')
        yield vm
    finally:
        lab.stack.stop(f"agent-{vm.netns}")
        remove_vms([vm])


def _ports(path: Path) -> list[int]:
    command = [shutil.which("tshark") or "tshark", "-n", "-r", str(path), "-T", "fields", "-e", "udp.srcport"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    return [int(port) for port in output.split()]


def _numbered(vm: LabVm, port: int, numbers: range, gap: float = 0.0,
              sending: threading.Event | None = None) -> None:
    send(vm, [inbound(vm, "UDP", 20000 + n, port, payload=64) for n in numbers], gap=gap, sending=sending)


def _create(lab, vm: LabVm, port: int, look_back: int) -> CaptureId:
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", f"lb-{secrets.token_hex(3)}")
    created = lab.client.create(capture, {
        "target": vm.vm.arm_id, "lookBackSeconds": look_back, "timeLimitInSeconds": 60,
        "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"},
        "filters": [{"protocol": "UDP", "localPort": str(port)}]})
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["lookBackSeconds"] == look_back
    return capture


def _stop(lab, capture: CaptureId) -> dict:
    lab.client.stop(capture)
    status = lab.client.wait_for(capture, "Stopped", "Error", timeout=20)
    assert status["packetCaptureStatus"] == "Stopped", status
    return status


def test_a_stream_crossing_the_hand_over_arrives_whole_in_order_and_once(lab, look_back_vm):
    vm = look_back_vm
    _numbered(vm, OTHER_PORT, range(100))  # the ring keeps it; the capture's filter does not
    sending = threading.Event()
    stream = threading.Thread(target=_numbered, args=(vm, PORT, range(3000), 0.001, sending))
    stream.start()
    assert sending.wait(30)
    time.sleep(1.0)  # about a third of the stream before the capture is asked for
    capture = _create(lab, vm, PORT, look_back=30)
    lab.client.wait_for(capture, "Running")
    stream.join(60)
    time.sleep(0.5)
    status = _stop(lab, capture)
    path = Path(status["packetWatchSummary"]["filePaths"][0])
    numbers = [port - 20000 for port in _ports(path)]
    assert numbers == list(range(3000)), (
        f"{len(numbers)} packets; missing {sorted(set(range(3000)) - set(numbers))[:10]}, "
        f"twice {sorted(n for n in set(numbers) if numbers.count(n) > 1)[:10]}")
    look_back = status["packetWatchSummary"]["lookBack"]
    assert look_back["requestedSeconds"] == 30 and 0 < look_back["packets"] < 3000 and not look_back.get("note")
    assert status["packetWatchSummary"]["packets"] == 3000


def test_an_alert_after_known_traffic_finds_that_traffic_in_its_capture(lab, look_back_vm):
    vm = look_back_vm
    _numbered(vm, LOOK_BACK_PORT, range(0, 50))
    time.sleep(0.5)
    answer = httpx.post(f"{lab.stack.api_url}/api/alerts?code={FUNCTION_KEY}",
                        json=s.azure_common(vm.vm.arm_id, rule=LOOK_BACK_RULE), timeout=10)
    assert answer.status_code == 202, answer.text
    [started] = answer.json()["started"]
    capture = CaptureId.parse(started["id"])
    lab.client.wait_for(capture, "Running")
    _numbered(vm, LOOK_BACK_PORT, range(50, 80))
    time.sleep(0.3)
    status = _stop(lab, capture)
    path = Path(status["packetWatchSummary"]["filePaths"][0])
    assert [port - 20000 for port in _ports(path)] == list(range(80)), "the 50 packets before the alert, then 30"
    assert status["packetWatchSummary"]["lookBack"]["packets"] == 50


def test_an_agent_without_a_ring_captures_live_packets_and_says_why_none_came_before(lab):
    vm = lab.vm2
    _numbered(vm, PORT, range(10))
    capture = _create(lab, vm, PORT, look_back=30)
    lab.client.wait_for(capture, "Running")
    _numbered(vm, PORT, range(10, 15))
    time.sleep(0.3)
    status = _stop(lab, capture)
    assert [port - 20000 for port in _ports(Path(status["packetWatchSummary"]["filePaths"][0]))] == list(range(10, 15))
    look_back = status["packetWatchSummary"]["lookBack"]
    assert look_back["packets"] == 0 and "look-back is off on this agent" in look_back["note"]


def test_a_look_back_past_its_bound_is_refused_naming_the_field(lab):
    vm = lab.vm2
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", "lb-bad")
    for value in (3601, -1, "ten"):
        answer = lab.client.create(capture, {"target": vm.vm.arm_id, "lookBackSeconds": value,
                                             "storageLocation": {"filePath": "/var/captures/e2e/lb-bad.cap"}})
        assert answer.status_code == 400 and "properties.lookBackSeconds" in answer.text, answer.text
    assert lab.client.get(capture).status_code == 404
