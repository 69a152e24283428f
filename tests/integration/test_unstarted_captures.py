"""A capture no agent takes says so, and ends by its start deadline (real database, real broker)."""

import secrets
import time
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from functions.api import create_app
from shared.config import Settings
from shared.messages import Heartbeat
from shared.registry import Registry
from shared.resource_ids import CaptureId, VirtualMachineId
from tests.integration.conftest import access_config, bearer, capture_body, unsent
from workers.control.worker import build_control_app

API = "?api-version=2026-01-01"


def _client(broker_url, database_url, tmp_path, **settings) -> TestClient:
    app = create_app(Settings(broker_url=broker_url, database_url=database_url,
                              access_config=access_config(tmp_path), **settings))
    return TestClient(app, headers=bearer("contributor-a"))


def test_a_capture_waiting_for_an_agent_says_for_which_and_since_when(broker_url, database_url, tmp_path):
    suffix = secrets.token_hex(3)
    never, seen = (VirtualMachineId("sub-a", "rg", f"{kind}-{suffix}") for kind in ("never", "seen"))
    registry = Registry.from_url(database_url)
    heard = datetime.now(timezone.utc) - timedelta(minutes=3)
    registry.record_heartbeat(Heartbeat(vm_id=seen.arm_id, version="1", hostname="h", reported_at=heard), heard)
    with _client(broker_url, database_url, tmp_path) as client:
        for vm in (never, seen):
            capture = CaptureId("sub-a", "rg", f"nw-{suffix}", vm.name)
            assert client.put(capture.arm_id + API, json=capture_body(vm)).status_code == 201
            status = client.post(capture.arm_id + "/queryStatus" + API).json()
            assert status["packetCaptureStatus"] == "NotStarted"
            detail = status["packetWatchStatusDetail"]
            assert vm.arm_id in detail and status["packetWatchStartDeadline"] in detail
            if vm is never:
                assert "no agent has ever reported" in detail and "packetWatchAgentLastSeen" not in status
            else:
                assert "(180 s ago)" in detail or "(181 s ago)" in detail
                assert status["packetWatchAgentLastSeen"].startswith(heard.strftime("%Y-%m-%dT%H:%M:%S"))


def test_an_unstarted_capture_ends_in_agent_stopped_at_its_deadline_and_its_request_is_dropped(
        broker_url, database_url, tmp_path):
    vm = VirtualMachineId("sub-a", "rg", f"typo-{secrets.token_hex(3)}")
    capture = CaptureId("sub-a", "rg", f"nw-{vm.name}", "pc1")
    registry = Registry.from_url(database_url)
    with _client(broker_url, database_url, tmp_path) as client:
        assert client.put(capture.arm_id + API, json=capture_body(vm)).status_code == 201
        _, control = build_control_app(broker_url, registry, heartbeat_seconds=0.2)
        time.sleep(0.5)  # past the deadline's grace of two ticks
        control.expire_unstarted(timedelta(0))
        assert registry.get(capture).status.value == "NotStarted", "not judged before the broker carried ticks"
        now = datetime.now(timezone.utc)
        for ago in (0.6, 0.4, 0.2, 0.0):
            control.tick(now - timedelta(seconds=ago))
        control.expire_unstarted(timedelta(minutes=5))
        assert registry.get(capture).status.value == "NotStarted", "not before its deadline"
        control.expire_unstarted(timedelta(0))
        status = client.post(capture.arm_id + "/queryStatus" + API).json()
    assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["AgentStopped"])
    assert "no agent has ever reported for this VM" in status["packetWatchErrorMessage"]
    assert unsent(registry, registry.get(capture)) == []


def test_a_capture_for_a_vm_no_agent_ever_reported_for_can_be_refused_at_once(broker_url, database_url, tmp_path):
    vm = VirtualMachineId("sub-a", "rg", f"unknown-{secrets.token_hex(3)}")
    capture = CaptureId("sub-a", "rg", f"nw-{vm.name}", "pc1")
    with _client(broker_url, database_url, tmp_path, require_known_agent=True) as client:
        answer = client.put(capture.arm_id + API, json=capture_body(vm))
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "AgentNotFound"
        assert answer.json()["error"]["target"] == "properties.target"
        assert client.get(capture.arm_id + API).status_code == 404
