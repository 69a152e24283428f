"""The registry on real SQLite and real PostgreSQL: status only moves forward."""

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from shared.arm import CaptureSummary, PacketCaptureParameters, PcError, PcStatus
from shared.errors import CaptureConflict, CaptureNotFound
from shared.messages import Heartbeat, StatusEvent
from shared.resource_ids import CaptureId

VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _params(**extra) -> PacketCaptureParameters:
    return PacketCaptureParameters.model_validate(
        {"target": VM, "storageLocation": {"filePath": "/var/captures/a.cap"}, **extra})


def _capture(registry, **extra):
    capture = CaptureId("s1", "rg", f"nw-{secrets.token_hex(3)}", "pc1")
    record, created = registry.create(capture, _params(**extra), VM.lower(), T0)
    assert created
    return capture, record


def _event(record, status, **fields) -> StatusEvent:
    return StatusEvent(capture_id=record.capture.arm_id, run_id=record.run_id, status=status,
                       reported_at=T0, **fields)


def test_status_moves_forward_once_and_ignores_duplicates_and_late_events(registry):
    capture, record = _capture(registry)
    assert registry.get(capture).status is PcStatus.NOT_STARTED
    assert registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0))
    assert not registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0 + timedelta(seconds=5)))
    summary = CaptureSummary(packets=3, bytes=300, kernel_drops=0, file_paths=["/x.cap"], sha256="ab")
    assert registry.apply(_event(record, PcStatus.STOPPED, stop_reason="TimeExceeded", summary=summary))
    assert not registry.apply(_event(record, PcStatus.RUNNING))
    assert not registry.apply(_event(record, PcStatus.ERROR, errors=[PcError.AGENT_STOPPED]))
    final = registry.get(capture)
    assert (final.status, final.stop_reason, final.errors) == (PcStatus.STOPPED, "TimeExceeded", [])
    assert final.capture_start_time == T0
    assert final.summary == summary
    assert final.etag != record.etag


def test_a_stopped_event_before_running_keeps_the_start_time(registry):
    capture, record = _capture(registry)
    assert registry.apply(_event(record, PcStatus.STOPPED, capture_start_time=T0, stop_reason="ManuallyStopped"))
    assert not registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0))
    assert registry.get(capture).capture_start_time == T0


def test_events_of_an_earlier_capture_with_the_same_name_change_nothing(registry):
    capture, old = _capture(registry)
    assert registry.delete(capture)
    new, created = registry.create(capture, _params(), VM.lower(), T0)
    assert created and new.run_id != old.run_id
    assert not registry.apply(_event(old, PcStatus.RUNNING))
    assert registry.get(capture).status is PcStatus.NOT_STARTED


def test_create_is_idempotent_for_the_same_body_and_refuses_a_different_one(registry):
    capture, record = _capture(registry)
    again, created = registry.create(capture, _params(), VM.lower(), T0)
    assert not created and again.run_id == record.run_id
    with pytest.raises(CaptureConflict):
        registry.create(capture, _params(timeLimitInSeconds=60), VM.lower(), T0)


def test_ids_are_case_insensitive_and_lists_are_per_watcher(registry):
    capture, _ = _capture(registry)
    shouting = CaptureId(capture.subscription.upper(), "RG", capture.network_watcher.upper(), "PC1")
    assert registry.get(shouting).capture == capture
    assert [r.capture.name for r in registry.list(shouting.watcher_path)] == ["pc1"]
    assert registry.list(capture.watcher_path + "x") == []
    assert registry.delete(capture)
    with pytest.raises(CaptureNotFound):
        registry.get(capture)


def test_heartbeats_record_when_the_agent_was_last_heard(registry):
    vm = f"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/hb-{secrets.token_hex(3)}"
    registry.record_heartbeat(Heartbeat(vm_id=vm, version="0", hostname="h", reported_at=T0), T0)
    registry.record_heartbeat(Heartbeat(vm_id=vm, version="1", hostname="h", reported_at=T0, running=["r1"]),
                              T0 + timedelta(seconds=10))
    [agent] = [a for a in registry.list_agents() if a.vm_id == vm]
    assert (agent.version, agent.last_seen, agent.running) == ("1", T0 + timedelta(seconds=10), ["r1"])


def test_only_the_first_of_many_stop_requests_counts(registry):
    capture, record = _capture(registry)
    assert registry.request_stop(record)
    assert not registry.request_stop(record)
    registry.clear_stop_request(record)
    assert registry.request_stop(record)
