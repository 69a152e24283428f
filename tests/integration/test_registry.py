"""The registry on real SQLite and real PostgreSQL: status only moves forward."""

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from shared.arm import CaptureSummary, PacketCaptureParameters, PcError, PcStatus, Talker
from shared.errors import CaptureConflict, CaptureNotFound
from shared.messages import CaptureStatistics, Heartbeat, Outgoing, StatusEvent, TaskName
from shared.registry import AlertClaim
from shared.resource_ids import CaptureId
from tests.integration.conftest import unsent

VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _params(**extra) -> PacketCaptureParameters:
    return PacketCaptureParameters.model_validate(
        {"target": VM, "storageLocation": {"filePath": "/var/captures/a.cap"}, **extra})


def _request(capture: CaptureId, run_id: str) -> Outgoing:
    return Outgoing(task=TaskName.CAPTURE, queue="q", payload={"capture_id": capture.arm_id, "run_id": run_id})


def _create(registry, capture: CaptureId, params: PacketCaptureParameters):
    run_id = secrets.token_hex(8)
    created = registry.create(capture, params, VM.lower(), T0, run_id, _request(capture, run_id))
    return created.record, created.created


def _capture(registry, **extra):
    capture = CaptureId("s1", "rg", f"nw-{secrets.token_hex(3)}", "pc1")
    record, created = _create(registry, capture, _params(**extra))
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
    new, created = _create(registry, capture, _params())
    assert created and new.run_id != old.run_id
    assert not registry.apply(_event(old, PcStatus.RUNNING))
    assert registry.get(capture).status is PcStatus.NOT_STARTED


def test_what_the_files_hold_joins_the_summary_of_the_run_it_was_read_from_once_it_ended(registry):
    capture, record = _capture(registry)
    talkers = [Talker(source="198.18.0.2", destination="198.18.0.1", packets=3, bytes=300)]
    read = CaptureStatistics(capture_id=capture.arm_id, run_id=record.run_id, sha256="cd", protocols={"UDP": 3},
                             top_talkers=talkers)
    assert registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0))
    assert not registry.apply_statistics(read), "not yet: its end is not applied (a caller tries again)"
    assert registry.get(capture).summary is None
    counted = CaptureSummary(packets=3, bytes=300, file_paths=["/x.cap"], duration_seconds=1.5)
    assert registry.apply(_event(record, PcStatus.STOPPED, stop_reason="ManuallyStopped", summary=counted))
    assert registry.get(capture).summary.protocols is None, "Stopped is reported before the files are read"
    assert registry.apply_statistics(read)
    assert registry.get(capture).summary == counted.model_copy(update={"sha256": "cd", "protocols": {"UDP": 3},
                                                                       "top_talkers": talkers})
    assert registry.get(capture).status is PcStatus.STOPPED

    assert registry.delete(capture)
    new, _ = _create(registry, capture, _params())
    assert registry.apply_statistics(read), "a report of a deleted capture's run is dropped"
    assert registry.get(capture).summary is None and new.run_id != record.run_id


def test_create_is_idempotent_for_the_same_body_and_refuses_a_different_one(registry):
    capture, record = _capture(registry)
    again, created = _create(registry, capture, _params())
    assert not created and again.run_id == record.run_id
    with pytest.raises(CaptureConflict):
        _create(registry, capture, _params(timeLimitInSeconds=60))


def test_ids_are_case_insensitive_and_lists_are_per_watcher(registry):
    capture, _ = _capture(registry)
    shouting = CaptureId(capture.subscription.upper(), "RG", capture.network_watcher.upper(), "PC1")
    assert registry.get(shouting).capture == capture
    assert [r.capture.name for r in registry.in_watcher(shouting.watcher_path)] == ["pc1"]
    assert registry.in_watcher(capture.watcher_path + "x") == []
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


def test_the_control_worker_writes_many_heartbeats_at_once_the_latest_of_each_agent_winning(registry):
    from workers.control.heartbeat_batch import HeartbeatBatch

    vms = [f"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/hb-{secrets.token_hex(3)}"
           for _ in range(300)]
    batch = HeartbeatBatch(registry)
    for round_ in range(3):
        for vm in vms:
            batch.add(Heartbeat(vm_id=vm, version=str(round_), hostname="h", reported_at=T0, running=[f"r{round_}"]),
                      T0 + timedelta(seconds=round_))
    assert [a for a in registry.list_agents() if a.vm_id in vms] == [], "nothing written before the flush"
    assert batch.flush() == 300 and batch.flush() == 0
    found = {a.vm_id: a for a in registry.list_agents() if a.vm_id in vms}
    assert len(found) == 300 and {(a.version, a.last_seen, tuple(a.running)) for a in found.values()} == {
        ("2", T0 + timedelta(seconds=2), ("r2",))}
    batch.add(Heartbeat(vm_id=vms[0].upper(), version="3", hostname="h", reported_at=T0), T0 + timedelta(seconds=3))
    batch.flush()
    assert [a.version for a in registry.list_agents() if a.vm_id.lower() == vms[0].lower()] == ["3"], \
        "one agent, whatever the case of its ID"


def _stop(record) -> Outgoing:
    return Outgoing(task=TaskName.STOP, queue="q", payload={"run_id": record.run_id})


def test_a_capture_and_its_request_are_recorded_together_until_the_broker_confirms_it(registry):
    capture = CaptureId("s1", "rg", f"nw-{secrets.token_hex(3)}", "pc1")
    now = datetime.now(timezone.utc)
    made = registry.create(capture, _params(), VM.lower(), now, "run1", _request(capture, "run1"))
    [pending] = made.pending
    assert unsent(registry, made.record) == [pending]
    assert registry.take_unsent(capture) == [], "its creator holds the lease: nobody else sends it"
    assert pending.id not in {m.id for m in registry.take_abandoned()}
    registry.messages_sent([pending])
    assert unsent(registry, made.record) == []


def test_a_request_whose_sender_died_is_taken_by_one_other_sender(registry):
    capture, record = _capture(registry)  # created at T0: its creator's lease ran out long ago
    [left] = unsent(registry, record)
    again = registry.create(capture, _params(), VM.lower(), T0, "other-run", _request(capture, "other-run"))
    assert (again.created, again.pending) == (False, [left]), "a re-sent PUT takes it and sends it"
    assert registry.take_unsent(capture) == [] and left.id not in {m.id for m in registry.take_abandoned()}
    registry.messages_sent([left])
    assert unsent(registry, record) == []


def test_the_relay_takes_abandoned_messages_once(registry):
    capture, record = _capture(registry)
    [left] = unsent(registry, record)
    assert left.id in {m.id for m in registry.take_abandoned()}
    assert left.id not in {m.id for m in registry.take_abandoned()}, "leased to the first relay"


def test_only_the_first_of_many_stop_requests_counts_and_stays_until_sent(registry):
    capture, record = _capture(registry)
    registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0))
    [stop] = registry.request_stop(record, _stop(record), datetime.now(timezone.utc))
    assert stop.message.task is TaskName.STOP
    assert registry.request_stop(record, _stop(record), datetime.now(timezone.utc)) == [], "its sender holds it"
    later = datetime.now(timezone.utc) + timedelta(seconds=60)
    assert registry.request_stop(record, _stop(record), later) == [stop], "its sender died: the next caller sends it"
    registry.messages_sent([stop])
    assert registry.request_stop(record, _stop(record), later) == []
    assert registry.get(capture).status is PcStatus.RUNNING


def test_stopping_a_capture_no_agent_started_stops_it_and_drops_its_unsent_request(registry):
    capture, record = _capture(registry)
    [stop] = registry.request_stop(record, _stop(record), T0)
    final = registry.get(capture)
    assert (final.status, final.stop_reason) == (PcStatus.STOPPED, "ManuallyStopped")
    assert unsent(registry, record) == [stop]


def test_delete_drops_the_unsent_request_but_not_an_unsent_stop(registry):
    capture, record = _capture(registry)
    registry.apply(_event(record, PcStatus.RUNNING, capture_start_time=T0))
    [stop] = registry.request_stop(record, _stop(record), T0)
    assert registry.delete(capture)
    assert [m.id for m in registry.take_abandoned() if m.run_id == record.run_id] == [stop.id]


def test_an_alert_claim_is_taken_with_its_capture_or_not_at_all(registry):
    first = CaptureId("s1", "rg", f"nw-{secrets.token_hex(3)}", "a1")
    second = CaptureId("s1", "rg", first.network_watcher, "a2")
    claim = AlertClaim(VM.lower(), "rule")
    made = registry.create(first, _params(), VM.lower(), T0, "r1", _request(first, "r1"), claim)
    assert made.created and made.holder is None
    lost = registry.create(second, _params(), VM.lower(), T0, "r2", _request(second, "r2"), claim)
    assert (lost.created, lost.holder) == (False, first)
    assert registry.find(second) is None, "the capture that lost the claim was never recorded"
    assert registry.alert_capture_status(claim.vm_key, claim.rule_key) == (first, PcStatus.NOT_STARTED)
