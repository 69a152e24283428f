"""Faults on the VM itself: a full disk, a file-size limit, two captures asking for one
file, and several agents sharing one host. Real agents, real kernel limits (a small
tmpfs, RLIMIT_FSIZE), files read back with tshark."""

import dataclasses
import secrets
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab.traffic import inbound, send
from shared.broker import agent_queue_name
from shared.resource_ids import CaptureId, VirtualMachineId
from tests.e2e.conftest import tshark_records


def _capture(vm, name: str) -> CaptureId:
    return CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", f"{name}-{secrets.token_hex(3)}")


def _create(lab, vm, capture: CaptureId, port: int, file_path: str | None = None, target: str | None = None) -> None:
    body = {"target": target or vm.vm.arm_id, "timeLimitInSeconds": 300,
            "storageLocation": {"filePath": file_path or f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    response = lab.client.create(capture, body)
    assert response.status_code == 201, response.text


def _reads_cleanly(path: Path) -> int:
    result = subprocess.run(["tshark", "-n", "-r", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "cut short" not in result.stderr and "damaged" not in result.stderr, \
        result.stderr
    return len(tshark_records(path))


@contextmanager
def _agent_instead(lab, vm, capture_dir: Path, name: str):
    """The lab agent of `vm` replaced, for the test, by one writing into `capture_dir`."""
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGTERM)
    process = lab.stack.spawn(name, "agent", "run", "--vm", vm.vm.arm_id, "--interface", vm.vm_if,
                              "--netns", vm.netns, "--capture-dir", str(capture_dir), env=lab.stack.agent_env(vm.vm))
    try:
        lab.stack.wait_for_consumer(agent_queue_name(vm.vm))
        yield process
    finally:
        lab.stack.stop(name, signal.SIGTERM)
        lab.stack.start_agent(vm)


@pytest.fixture
def small_disk():
    folder = Path(tempfile.mkdtemp(prefix="packetwatch-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def _half_full(disk: Path) -> Path:
    """Take 1 MiB of the 2 MiB disk; returns the file that holds it."""
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024))
    return filler


def _ends_in_local_file_failed(lab, vm, capture: CaptureId, reason: str) -> dict:
    status = lab.client.wait_for(capture, "Error", "Stopped", timeout=30)
    assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["LocalFileFailed"]), status
    assert reason in status["packetWatchErrorMessage"]
    summary = status["packetWatchSummary"]
    path = Path(summary["filePaths"][0])
    assert summary["packets"] > 0 and _reads_cleanly(path) == summary["packets"]
    assert path.stat().st_size == summary["bytes"]
    assert {r[3:5] for r in tshark_records(path)} == {(7602, 7601)} or reason != "No space", "only what was asked"
    return status


def test_a_full_disk_ends_the_capture_at_once_with_a_readable_file_and_the_next_capture_runs(lab, small_disk):
    vm = lab.vm2
    filler = _half_full(small_disk)
    with _agent_instead(lab, vm, small_disk, f"agent-{vm.netns}-tmpfs"):
        capture = _capture(vm, "full")
        _create(lab, vm, capture, 7601)
        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 7602, 7601, payload=1000)], repeat=2000)
        status = _ends_in_local_file_failed(lab, vm, capture, "No space left on device")
        assert status["packetWatchSummary"]["packets"] < 2000

        filler.unlink()
        after = _capture(vm, "after")
        _create(lab, vm, after, 7603)
        lab.client.wait_for(after, "Running")
        send(vm, [inbound(vm, "UDP", 7604, 7603, payload=100)], repeat=20)
        lab.client.stop(after)
        done = lab.client.wait_for(after, "Stopped", "Error", timeout=30)
        assert done["packetCaptureStatus"] == "Stopped"
        assert _reads_cleanly(Path(done["packetWatchSummary"]["filePaths"][0])) == 20


def test_a_capture_on_a_disk_already_full_fails_at_once_leaving_no_file(lab, small_disk):
    vm = lab.vm2
    with _agent_instead(lab, vm, small_disk, f"agent-{vm.netns}-full"):
        filler = small_disk / "filler"
        with filler.open("wb") as out:  # every block of the tmpfs taken
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        capture = _capture(vm, "nospace")
        _create(lab, vm, capture, 7605)
        status = lab.client.wait_for(capture, "Error", "Running", "Stopped", timeout=30)
        assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["LocalFileFailed"])
        assert "No space left on device" in status["packetWatchErrorMessage"]
        assert not (small_disk / "e2e" / f"{capture.name}.cap").exists(), "no torn or empty file is left"


def test_a_file_size_limit_ends_the_capture_as_local_file_failed_not_the_agent(lab, tmp_path):
    vm = lab.vm2
    with _agent_instead(lab, vm, tmp_path, f"agent-{vm.netns}-fsize") as agent:
        subprocess.run(["prlimit", "--pid", str(agent.pid), "--fsize=200000:200000"], check=True)
        capture = _capture(vm, "fsize")
        _create(lab, vm, capture, 7601)
        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 7602, 7601, payload=1000)], repeat=400)
        status = _ends_in_local_file_failed(lab, vm, capture, "File too large")
        assert status["packetWatchSummary"]["bytes"] <= 200000
        assert agent.poll() is None, "the agent lives on"


def test_two_captures_asking_for_one_file_at_once_never_share_it(lab):
    vm = lab.vm1
    shared_path = f"/var/captures/e2e/same-{secrets.token_hex(3)}.cap"
    first, second = _capture(vm, "same-a"), _capture(vm, "same-b")
    _create(lab, vm, first, 7611, shared_path)
    _create(lab, vm, second, 7613, shared_path)
    statuses = {c.name: lab.client.wait_for(c, "Running", "Error", timeout=30) for c in (first, second)}
    failed = [name for name, s in statuses.items() if s["packetCaptureStatus"] == "Error"]
    assert len(failed) == 1
    [winner] = [c for c in (first, second) if c.name not in failed]
    error = statuses[failed[0]]
    assert error["packetCaptureError"] == ["LocalFileFailed"] and "already exists" in error["packetWatchErrorMessage"]
    assert shared_path.split("/")[-1] in error["packetWatchErrorMessage"]
    port = 7611 if winner is first else 7613
    send(vm, [inbound(vm, "UDP", 7612, 7611), inbound(vm, "UDP", 7614, 7613)], repeat=6)
    lab.client.stop(winner)
    done = lab.client.wait_for(winner, "Stopped", timeout=30)
    records = tshark_records(Path(done["packetWatchSummary"]["filePaths"][0]))
    assert len(records) == 6 == done["packetWatchSummary"]["packets"] and {r[4] for r in records} == {port}


def test_agents_sharing_a_host_never_touch_each_others_captures(lab):
    vm = lab.vm1
    twin = dataclasses.replace(vm, vm=VirtualMachineId(vm.vm.subscription, "other-rg", vm.vm.name))
    assert agent_queue_name(twin.vm) != agent_queue_name(vm.vm)
    name = f"agent-{vm.netns}-twin"

    def start_twin() -> None:
        lab.stack.spawn(name, "agent", "run", "--vm", twin.vm.arm_id, "--interface", vm.vm_if,
                        "--netns", vm.netns, "--capture-dir", str(lab.stack.capture_dir(vm)),
                        env=lab.stack.agent_env(twin.vm))
        lab.stack.wait_for_consumer(agent_queue_name(twin.vm))

    start_twin()
    try:
        mine, theirs = _capture(vm, "mine"), _capture(twin, "theirs")
        _create(lab, vm, mine, 7621)
        _create(lab, twin, theirs, 7623, target=twin.vm.arm_id)
        lab.client.wait_for(mine, "Running")
        lab.client.wait_for(theirs, "Running")
        send(vm, [inbound(vm, "UDP", 7622, 7621)], repeat=3)
        lab.stack.stop(name, signal.SIGKILL)
        start_twin()  # recovers its own unfinished capture, and only that one
        recovered = lab.client.wait_for(theirs, "Error", timeout=60)
        assert recovered["packetCaptureError"] == ["AgentStopped"]
        time.sleep(1)
        assert lab.client.status(mine)["packetCaptureStatus"] == "Running"
        send(vm, [inbound(vm, "UDP", 7622, 7621)], repeat=2)
        lab.client.stop(mine)
        done = lab.client.wait_for(mine, "Stopped", "Error", timeout=30)
        assert done["packetCaptureStatus"] == "Stopped"
        assert len(tshark_records(Path(done["packetWatchSummary"]["filePaths"][0]))) == 5
        workers = (lab.stack.workdir / f"{name}.log").read_text()
        assert agent_queue_name(twin.vm) in workers, "the twin's worker is named after its own VM identity"
    finally:
        lab.stack.stop(name, signal.SIGTERM)


def test_an_agent_started_without_vm_learns_it_from_imds_and_captures_for_it(lab):
    from tests.imds_server import imds

    vm = lab.vm2
    name = f"agent-{vm.netns}-imds"
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGTERM)
    try:
        with imds(vm.vm.arm_id) as url:
            lab.stack.spawn(name, "agent", "run", "--interface", vm.vm_if, "--netns", vm.netns,
                            "--capture-dir", str(lab.stack.capture_dir(vm)),
                            env={**lab.stack.agent_env(vm.vm), "PACKETWATCH_IMDS_URL": url})
            lab.stack.wait_for_consumer(agent_queue_name(vm.vm))
        capture = _capture(vm, "imds")
        _create(lab, vm, capture, 7631)
        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 7632, 7631)], repeat=2)
        lab.client.stop(capture)
        done = lab.client.wait_for(capture, "Stopped", timeout=30)
        assert done["packetWatchSummary"]["packets"] == 2
    finally:
        lab.stack.stop(name, signal.SIGTERM)
        lab.stack.start_agent(vm)


def test_a_full_disk_ends_a_continuous_capture_with_every_file_readable(lab, small_disk):
    vm = lab.vm2
    _half_full(small_disk)
    with _agent_instead(lab, vm, small_disk, f"agent-{vm.netns}-tmpfs-ring"):
        capture = _capture(vm, "fullring")
        body = {"target": vm.vm.arm_id, "continuousCapture": False, "bytesToCapturePerPacket": 1500,
                "captureSettings": {"fileCount": 100, "fileSizeInBytes": 200_000, "sessionTimeLimitInSeconds": 300},
                "storageLocation": {"localPath": f"/var/captures/e2e/{capture.name}.cap"},
                "filters": [{"protocol": "UDP", "localPort": "7607"}]}
        assert lab.client.create(capture, body).status_code == 201
        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 7608, 7607, payload=1000)], repeat=2000)
        status = lab.client.wait_for(capture, "Error", "Stopped", timeout=30)
        assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["LocalFileFailed"]), status
        assert "No space left on device" in status["packetWatchErrorMessage"]
        files = sorted((small_disk / "e2e").glob(f"{capture.name}_*.cap"))
        assert files, "the ring wrote its files before the disk filled"
        summary = status["packetWatchSummary"]
        assert sum(_reads_cleanly(path) for path in files) == summary["packets"] < 2000
        assert sum(path.stat().st_size for path in files) == summary["bytes"]
