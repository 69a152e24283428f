"""Continuous capture on a netns VM, as ARM defines it: a stream of numbered packets
(one source port each) crosses many file seams and is read back with tshark, whole, in
order, none twice; a rolling ring keeps its newest fileCount files; a ring that does not
roll ends the capture when its files are full; with a storage account each file is
uploaded as it closes, verified, and removed from the spool."""

import hashlib
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from lab.stack import STORAGE_ID
from lab.traffic import inbound, send
from shared.registry import Registry
from shared.resource_ids import CaptureId
from shared.storage_layout import BLOB_CONTAINER, blob_path

PAYLOAD = 200
RECORD = 16 + 14 + 20 + 8 + PAYLOAD  # pcap record header + Ethernet, IPv4, UDP, payload
FILE_BYTES = 24 + 7 * RECORD + 100  # seven packets a file


def _source_ports(path: Path) -> list[int]:
    command = [shutil.which("tshark") or "tshark", "-n", "-r", str(path), "-T", "fields", "-e", "udp.srcport"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    return [int(port) for port in output.split()]


def _start(lab, name: str, rolling: bool, file_count: int, port: int, **location: str) -> tuple[CaptureId, str]:
    vm = lab.vm1
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", f"{name}-{secrets.token_hex(3)}")
    body = {"target": vm.vm.arm_id, "bytesToCapturePerPacket": 300, "continuousCapture": rolling,
            "captureSettings": {"fileCount": file_count, "fileSizeInBytes": FILE_BYTES,
                                "sessionTimeLimitInSeconds": 120},
            "storageLocation": location or {"localPath": f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    created = lab.client.create(capture, body)
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    assert properties["continuousCapture"] is rolling and properties["captureSettings"]["fileCount"] == file_count
    lab.client.wait_for(capture, "Running")
    return capture, capture.name


def wait_for_files(lab, capture: CaptureId, count: int, stored: bool = False, timeout: float = 30) -> list[dict]:
    """packetWatchFiles once it lists `count` files (and, with `stored`, each stored)."""
    deadline = time.monotonic() + timeout
    while True:
        files = lab.client.status(capture).get("packetWatchFiles", [])
        if len(files) == count and (not stored or all(f.get("storagePath") for f in files)):
            return files
        assert time.monotonic() < deadline, files
        time.sleep(0.2)


def _numbered(lab, port: int, count: int) -> None:
    send(lab.vm1, [inbound(lab.vm1, "UDP", 20000 + n, port, payload=PAYLOAD) for n in range(count)])


def test_a_rolling_ring_keeps_its_newest_files_whole_across_every_seam(lab):
    capture, name = _start(lab, "ring", True, 3, 7900)
    _numbered(lab, 7900, 50)
    lab.client.stop(capture)
    status = lab.client.wait_for(capture, "Stopped", "Error")
    assert (status["packetCaptureStatus"], status["stopReason"]) == ("Stopped", "ManuallyStopped")
    folder = lab.stack.capture_dir(lab.vm1) / "e2e"
    files = sorted(folder.glob(f"{name}_*.cap"))
    assert [path.name for path in files] == [f"{name}_{n:05d}.cap" for n in (6, 7, 8)], "oldest removed first"
    assert [port for path in files for port in _source_ports(path)] == list(range(20035, 20050))
    assert all(path.stat().st_size <= FILE_BYTES for path in files)
    summary = lab.client.wait_read(capture)["packetWatchSummary"]
    assert summary["packets"] == 50 and summary["filePaths"] == [str(path) for path in files]
    assert summary["protocols"] == {"UDP": 15}, "the files the ring kept"
    listed = wait_for_files(lab, capture, 8)
    assert [(f["index"], f["packets"]) for f in listed] == [(n, 7) for n in range(1, 8)] + [(8, 1)]
    assert [f["path"] for f in listed[-3:]] == [str(path) for path in files]


def test_a_ring_that_does_not_roll_ends_the_capture_when_its_files_are_full(lab):
    capture, name = _start(lab, "files", False, 2, 7910)
    _numbered(lab, 7910, 30)
    status = lab.client.wait_for(capture, "Stopped", "Error")
    assert status["stopReason"] == "TotalBytesPerSessionExceeded"
    files = sorted((lab.stack.capture_dir(lab.vm1) / "e2e").glob(f"{name}_*.cap"))
    assert [port for path in files for port in _source_ports(path)] == list(range(20000, 20014))
    assert len(files) == 2 and status["packetWatchSummary"]["packets"] == 14


def test_each_file_of_a_continuous_capture_is_uploaded_as_it_closes_and_leaves_the_spool(lab, tmp_path):
    capture, name = _start(lab, "ringstore", False, 3, 7920, storageId=STORAGE_ID)
    _numbered(lab, 7920, 20)
    stored = wait_for_files(lab, capture, 2, stored=True)  # two full files, uploaded while it runs
    assert lab.client.status(capture)["packetCaptureStatus"] == "Running"
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped")
    stored = wait_for_files(lab, capture, 3, stored=True)
    prefix = blob_path(lab.vm1.vm, Registry.from_url(lab.stack.database_url).get(capture).created_at)[:-4]
    service = BlobServiceClient.from_connection_string(lab.azurite.connection_string)
    ports = []
    for number, entry in enumerate(stored, start=1):
        assert entry["storagePath"].endswith(f"/{BLOB_CONTAINER}/{prefix}_{number:05d}.cap")
        blob = tmp_path / f"{number}.cap"
        stored_blob = service.get_blob_client(BLOB_CONTAINER, f"{prefix}_{number:05d}.cap")
        blob.write_bytes(stored_blob.download_blob().readall())
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == entry["sha256"]
        assert not Path(entry["path"]).exists(), "the spooled file is removed once stored"
        ports += _source_ports(blob)
    assert ports == list(range(20000, 20020)) and [e["packets"] for e in stored] == [7, 7, 6]


def test_the_file_a_killed_agent_was_writing_is_listed_and_uploaded_after_its_restart(lab, tmp_path):
    vm = lab.vm1
    capture, name = _start(lab, "ringkill", True, 5, 7940, storageId=STORAGE_ID)
    _numbered(lab, 7940, 10)  # file 1 full (7), file 2 open with 3
    wait_for_files(lab, capture, 1, stored=True)
    time.sleep(1.0)  # the engine drains and flushes at least every 0.2 s
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGKILL)
    lab.stack.start_agent(vm)
    stored = wait_for_files(lab, capture, 2, stored=True)
    assert [(f["index"], f["packets"]) for f in stored] == [(1, 7), (2, 3)]
    status = lab.client.wait_for(capture, "Error", timeout=30)
    assert status["packetCaptureError"] == ["AgentStopped"]
    service = BlobServiceClient.from_connection_string(lab.azurite.connection_string)
    ports = []
    for entry in stored:
        blob = tmp_path / f"{entry['index']}.cap"
        blob.write_bytes(service.get_blob_client(BLOB_CONTAINER, entry["storagePath"].split(f"/{BLOB_CONTAINER}/")[1])
                         .download_blob().readall())
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == entry["sha256"]
        ports += _source_ports(blob)
    assert ports == list(range(20000, 20010)), "every packet, in order, across the crash"


def test_delete_of_a_running_ring_stops_it_and_keeps_its_files(lab):
    capture, name = _start(lab, "ringdel", True, 5, 7930)
    _numbered(lab, 7930, 10)
    registry = Registry.from_url(lab.stack.database_url)
    run_id = registry.get(capture).run_id

    def running() -> bool:
        return any(run_id in agent.running for agent in registry.list_agents())

    deadline = time.monotonic() + 20
    while not running():  # the agent's heartbeat lists the run
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert lab.client.delete(capture).status_code == 202
    while running():
        assert time.monotonic() < deadline, "the agent still runs the deleted capture"
        time.sleep(0.2)
    _numbered(lab, 7930, 5)  # after the stop: none of these may appear
    files = sorted((lab.stack.capture_dir(lab.vm1) / "e2e").glob(f"{name}_*.cap"))
    assert [port for path in files for port in _source_ports(path)] == list(range(20000, 20010))


def test_continuous_capture_refuses_what_arm_says_it_cannot_take_naming_the_field(lab):
    vm = lab.vm1
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", "ring-bad")
    base = {"target": vm.vm.arm_id, "continuousCapture": True}
    cases = [
        ({**base, "storageLocation": {"filePath": "/var/captures/e2e/x.cap"}}, "properties.storageLocation.filePath"),
        ({**base, "storageLocation": {}}, "properties.storageLocation.localPath"),
        ({**base, "storageLocation": {"localPath": "/var/captures/e2e/x.cap"},
          "captureSettings": {"fileSizeInBytes": 1000}}, "properties.captureSettings.fileSizeInBytes"),
        ({"target": vm.vm.arm_id, "storageLocation": {"filePath": "/var/captures/e2e/x.cap"},
          "captureSettings": {"fileCount": 3}}, "properties.captureSettings"),
        ({**base, "storageLocation": {"localPath": "/var/captures/e2e/x.cap"},
          "captureSettings": {"fileCount": 10001}}, "properties.captureSettings.fileCount"),
    ]
    for body, field in cases:
        answer = lab.client.create(capture, body)
        assert answer.status_code == 400, (body, answer.text)
        assert field in answer.text, (field, answer.text)
    assert lab.client.get(capture).status_code == 404
