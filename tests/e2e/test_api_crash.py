"""The API process killed at each step of a create (a real SIGKILL at a named point): an
accepted capture is never stranded, and runs exactly once."""

import secrets
import signal
from pathlib import Path

import httpx
import pytest

from cli.arm_client import ArmRoutes
from cli.supervisor import free_port
from lab.traffic import inbound, send
from shared.resource_ids import CaptureId
from tests.e2e.conftest import FUNCTION_KEY, tshark_records

CREATE_STEPS = ["capture.recorded", "capture.published", "capture.confirmed"]


def _api(lab, name: str, failpoint: str | None = None) -> ArmRoutes:
    env = {"PACKETWATCH_FAILPOINTS": failpoint} if failpoint else None
    return ArmRoutes(lab.stack.start_server(name, free_port(), env=env), lab.stack.token)


def _killed(lab, name: str) -> None:
    process = lab.stack.processes.pop(name)
    assert process.wait(10) == -signal.SIGKILL, "the API process died at its failpoint"


def _starts(lab, capture_id: str) -> int:
    log = (lab.stack.workdir / f"agent-{lab.vm1.netns}.log").read_text()
    return log.count(f"capture {capture_id} run ")


def _captures_exactly(lab, capture: CaptureId, port: int, packets: int) -> None:
    vm = lab.vm1
    lab.client.wait_for(capture, "Running", timeout=60)
    send(vm, [inbound(vm, "UDP", port + 1, port)], repeat=packets)
    assert lab.client.stop(capture).status_code == 200
    status = lab.client.wait_for(capture, "Stopped", "Error", timeout=30)
    assert status["packetCaptureStatus"] == "Stopped"
    path = Path(status["packetWatchSummary"]["filePaths"][0])
    assert len(tshark_records(path)) == packets == status["packetWatchSummary"]["packets"]
    assert _starts(lab, capture.arm_id) == 1, "the capture ran exactly once"


def _body(lab, capture: CaptureId, port: int) -> dict:
    return {"target": lab.vm1.vm.arm_id, "timeLimitInSeconds": 120,
            "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_an_api_killed_at_any_step_of_a_create_runs_the_capture_once_when_the_client_resends(lab, step):
    port = 7500 + CREATE_STEPS.index(step) * 2
    capture = CaptureId(lab.vm1.vm.subscription, "rg", "crash-watcher", f"crash-{secrets.token_hex(3)}")
    body = _body(lab, capture, port)
    with pytest.raises(httpx.TransportError):
        _api(lab, f"api-{step}", step).create(capture, body)
    _killed(lab, f"api-{step}")
    again = _api(lab, f"api-{step}-again")
    try:
        answer = again.create(capture, body)
        assert answer.status_code == 201, answer.text
        _captures_exactly(lab, capture, port, 7)
    finally:
        lab.stack.stop(f"api-{step}-again")


def test_a_capture_recorded_by_an_api_that_died_runs_with_no_client_resending(lab):
    port = 7510
    capture = CaptureId(lab.vm1.vm.subscription, "rg", "crash-watcher", f"relayed-{secrets.token_hex(3)}")
    with pytest.raises(httpx.TransportError):
        _api(lab, "api-relay", "capture.recorded").create(capture, _body(lab, capture, port))
    _killed(lab, "api-relay")
    assert lab.client.status(capture)["packetCaptureStatus"] == "NotStarted"
    _captures_exactly(lab, capture, port, 4)  # the control worker's relay sent the request


def test_an_alert_resent_after_the_api_died_is_not_answered_already_running_while_nothing_runs(lab):
    port = 7512
    rule = f"crash-{secrets.token_hex(3)}"
    alert = {"target": lab.vm1.vm.arm_id, "rule": rule, "state": "firing",
             "capture": {"filters": [{"protocol": "UDP", "localPort": str(port)}], "timeLimitInSeconds": 120}}
    dying = _api(lab, "api-alert", "capture.recorded")
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{dying.base_url}/api/alerts", json=alert, headers={"x-functions-key": FUNCTION_KEY}, timeout=10)
    _killed(lab, "api-alert")
    again = _api(lab, "api-alert-again")
    try:
        answer = httpx.post(f"{again.base_url}/api/alerts", json=alert, headers={"x-functions-key": FUNCTION_KEY},
                            timeout=30)
        assert answer.status_code == 200, answer.text
        [held] = answer.json()["alreadyRunning"]
        capture = CaptureId.parse(held["id"])
        _captures_exactly(lab, capture, port, 5)
        repeat = httpx.post(f"{again.base_url}/api/alerts", json=alert, headers={"x-functions-key": FUNCTION_KEY},
                            timeout=30)
        assert repeat.status_code == 202, "a stopped capture frees the rule"
        lab.client.stop(CaptureId.parse(repeat.json()["started"][0]["id"]))
    finally:
        lab.stack.stop("api-alert-again")


def test_a_request_that_reaches_the_agent_after_its_start_deadline_never_starts(lab):
    capture = CaptureId(lab.vm1.vm.subscription, "rg", "crash-watcher", f"late-{secrets.token_hex(3)}")
    late = ArmRoutes(lab.stack.start_server("api-late", free_port(), env={"PACKETWATCH_START_DEADLINE_SECONDS": "0"}),
                     lab.stack.token)
    try:
        assert late.create(capture, _body(lab, capture, 7514)).status_code == 201
        status = lab.client.wait_for(capture, "Error", "Running", "Stopped", timeout=30)
    finally:
        lab.stack.stop("api-late")
    assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["AgentStopped"])
    assert "after its start deadline" in status["packetWatchErrorMessage"]
    assert not (lab.stack.capture_dir(lab.vm1) / "e2e" / f"{capture.name}.cap").exists()
    assert _starts(lab, capture.arm_id) == 0
