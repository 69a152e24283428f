"""Faults on real parts: agents killed or stopped mid-capture, the broker restarted with
requests queued, captures running and completion events in flight."""

import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from lab.traffic import inbound, send
from shared.broker import CONTROL_QUEUE, agent_queue_name
from shared.registry import Registry
from shared.resource_ids import CaptureId
from tests.e2e.conftest import tshark_records

ROOT = Path(__file__).resolve().parents[2]


def _capture(lab, vm, name: str) -> CaptureId:
    return CaptureId(vm.vm.subscription, vm.vm.resource_group, "e2e-watcher", f"{name}-{secrets.token_hex(3)}")


def _create(lab, vm, capture: CaptureId, seconds: int = 300, port: int = 7400) -> None:
    body = {"target": vm.vm.arm_id, "timeLimitInSeconds": seconds,
            "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    response = lab.client.create(capture, body)
    assert response.status_code == 201, response.text


def _running_with_traffic(lab, vm, name: str, port: int, packets: int, seconds: int = 300,
                          payload: int = 300) -> CaptureId:
    """A capture on UDP local `port`, Running, after `packets` matching packets were sent."""
    capture = _capture(lab, vm, name)
    _create(lab, vm, capture, seconds, port)
    lab.client.wait_for(capture, "Running")
    send(vm, [inbound(vm, "UDP", port + 1, port, payload=payload)], repeat=packets)
    return capture


def _tshark_reads_cleanly(path: Path) -> None:
    result = subprocess.run(["tshark", "-n", "-r", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "cut short" not in result.stderr and "appears to be damaged" not in result.stderr


def test_sigkill_during_a_capture_ends_it_as_agent_stopped_with_a_readable_file(lab):
    vm = lab.vm1
    capture = _running_with_traffic(lab, vm, "sigkill", 7401, 25)
    time.sleep(1.0)  # the engine drains and flushes at least every 0.2 s
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGKILL)
    status = lab.client.wait_for(capture, "Error", "Stopped", timeout=60)
    assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["AgentStopped"])

    lab.stack.start_agent(vm)
    path = lab.stack.capture_dir(vm) / "e2e" / f"{capture.name}.cap"
    registry = Registry.from_url(lab.stack.database_url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(a.vm_id == vm.vm.arm_id and a.last_seen and not a.running
                                                  for a in registry.list_agents()):
        time.sleep(0.2)
    _tshark_reads_cleanly(path)
    assert len(tshark_records(path)) == 25
    assert lab.client.status(capture)["packetCaptureStatus"] == "Error", "the restarted agent did not run it again"
    assert [a.running for a in registry.list_agents() if a.vm_id == vm.vm.arm_id] == [[]]


def test_sigterm_ends_the_capture_cleanly_with_a_stop_reason_and_a_complete_file(lab):
    vm = lab.vm1
    capture = _running_with_traffic(lab, vm, "sigterm", 7411, 15)
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGTERM)
    status = lab.client.wait_for(capture, "Stopped", "Error", timeout=30)
    lab.stack.start_agent(vm)
    assert (status["packetCaptureStatus"], status["stopReason"]) == ("Stopped", "AgentShutdown")
    path = Path(status["packetWatchSummary"]["filePaths"][0])
    _tshark_reads_cleanly(path)
    assert len(tshark_records(path)) == 15 == status["packetWatchSummary"]["packets"]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def test_a_broker_restart_loses_no_request_no_capture_and_no_completion_event(lab):
    vm1, vm2 = lab.vm1, lab.vm2
    running = _running_with_traffic(lab, vm1, "through", 7421, 5, seconds=6, payload=0)

    lab.stack.stop(f"agent-{vm2.netns}", signal.SIGTERM)
    queued = _capture(lab, vm2, "queued")
    _create(lab, vm2, queued, port=7431)

    _rabbitmqctl("stop_app")
    try:
        refused = httpx.put(f"{lab.stack.api_url}{_capture(lab, vm1, 'refused').arm_id}?api-version=2026-01-01",
                            json={"properties": {"target": vm1.vm.arm_id,
                                                 "storageLocation": {"filePath": "/var/captures/e2e/r.cap"}}},
                            headers={"Authorization": f"Bearer {lab.stack.token}"}, timeout=60)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        time.sleep(8)  # the running capture reaches its time limit while the broker is away
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
    for queue in (CONTROL_QUEUE, agent_queue_name(vm1.vm)):
        lab.stack.wait_for_consumer(queue)

    ended = lab.client.wait_for(running, "Stopped", "Error", timeout=90)
    assert (ended["packetCaptureStatus"], ended["stopReason"]) == ("Stopped", "TimeExceeded")
    assert len(tshark_records(Path(ended["packetWatchSummary"]["filePaths"][0]))) == 5

    lab.stack.start_agent(vm2)
    lab.client.wait_for(queued, "Running", timeout=60)
    send(vm2, [inbound(vm2, "UDP", 7432, 7431)], repeat=3)
    lab.client.stop(queued)
    done = lab.client.wait_for(queued, "Stopped", timeout=30)
    assert len(tshark_records(Path(done["packetWatchSummary"]["filePaths"][0]))) == 3
    assert len(list((lab.stack.capture_dir(vm2) / "e2e").glob(f"{queued.name}*"))) == 1


def test_the_agent_captures_as_a_non_root_user_with_only_cap_net_raw_and_no_database(lab):
    user = "nobody"
    probe = subprocess.run(["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                            "import cli.main"], capture_output=True, cwd=str(ROOT), timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"{user} cannot read this checkout's Python environment: {probe.stderr.decode()[-200:]}")
    vm = lab.vm2
    capture_dir = Path(tempfile.mkdtemp(prefix="packetwatch-nonroot-"))
    capture_dir.chmod(0o755)
    subprocess.run(["chown", f"{user}:", str(capture_dir)], check=True)
    name = f"agent-nonroot-{vm.netns}"
    merged = {**lab.stack.env(), **lab.stack.agent_env(vm.vm)}
    env = {key: value for key, value in merged.items() if value is not None}
    env["HOME"] = str(capture_dir)
    lab.stack.stop(f"agent-{vm.netns}", signal.SIGTERM)
    log = (lab.stack.workdir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        ["setpriv", f"--reuid={user}", "--regid=nogroup",
         "--clear-groups", "--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw",
         "--no-new-privs", sys.executable, "-m", "cli.main",
         "agent", "run", "--vm", vm.vm.arm_id, "--interface", vm.host_if, "--capture-dir", str(capture_dir)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        lab.stack.wait_for_consumer(agent_queue_name(vm.vm))
        status_line = Path(f"/proc/{process.pid}/status").read_text()
        assert "CapEff:\t0000000000002000" in status_line, "only CAP_NET_RAW is effective"
        assert f"Uid:\t{subprocess.run(['id', '-u', user], capture_output=True, text=True).stdout.strip()}" \
            in status_line
        capture = _capture(lab, vm, "nonroot")
        _create(lab, vm, capture, port=7441)
        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 7442, 7441)], repeat=4)
        lab.client.stop(capture)
        status = lab.client.wait_for(capture, "Stopped", timeout=30)
        path = Path(status["packetWatchSummary"]["filePaths"][0])
        assert path.is_relative_to(capture_dir) and path.stat().st_uid != 0
        assert len(tshark_records(path)) == 4
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        lab.stack.start_agent(vm)
        shutil.rmtree(capture_dir, ignore_errors=True)
