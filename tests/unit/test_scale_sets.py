"""Scale set scope and status rules, as ARM and a user read them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.arm import CaptureSummary, PacketCaptureMachineScope, PacketCaptureParameters, PcError, PcStatus
from shared.errors import AgentNotFound, InvalidField
from shared.registry_records import CaptureRecord
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId
from shared.scale_sets import in_scope, scale_set_status

SS = ScaleSetId("sub", "rg", "web")
INSTANCES = [SS.instance(str(n)) for n in range(4)]
PARENT = CaptureId("sub", "rg", "nw", "pc")


def test_an_instance_resource_id_round_trips_and_names_its_scale_set():
    text = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/3"
    vm = VirtualMachineId.parse(text)
    assert (vm.scale_set, vm.name, vm.computer_name, vm.arm_id) == ("web", "3", "web_3", text)
    assert vm.scale_set_id == SS and vm == SS.instance("3")
    child = PARENT.of_instance("3")
    assert CaptureId.parse(child.arm_id) == child and child.parent == PARENT


@pytest.mark.parametrize(("scope", "expected"), [
    (None, ["0", "1", "2", "3"]),
    (PacketCaptureMachineScope(include=[], exclude=[]), ["0", "1", "2", "3"]),
    (PacketCaptureMachineScope(include=["1", "WEB_3"]), ["1", "3"]),
    (PacketCaptureMachineScope(exclude=["0", "web_2"]), ["1", "3"]),
    (PacketCaptureMachineScope(include=["0", "1"], exclude=["1"]), ["0"]),
    (PacketCaptureMachineScope(include=[SS.instance("2").arm_id.upper()]), ["2"]),
])
def test_scope_picks_instances_as_arm_says(scope, expected):
    assert [vm.name for vm in in_scope(SS, INSTANCES, scope)] == expected


def test_an_included_instance_without_an_agent_is_refused_by_its_place_in_the_list():
    with pytest.raises(InvalidField) as caught:
        in_scope(SS, INSTANCES, PacketCaptureMachineScope(include=["1", "9"]))
    assert caught.value.field == "properties.scope.include[1]"
    with pytest.raises(AgentNotFound):
        in_scope(SS, INSTANCES, PacketCaptureMachineScope(exclude=["0", "1", "2", "3"]))
    with pytest.raises(AgentNotFound):
        in_scope(SS, [], None)


def _part(instance: str, status: PcStatus, stop_reason: str | None = None, errors=(), packets: int = 0):  # type: ignore[no-untyped-def]
    return CaptureRecord(
        capture=PARENT.of_instance(instance),
        parameters=PacketCaptureParameters(target=SS.instance(instance).arm_id, storageLocation={"filePath": "/x.cap"}),
        status=status, capture_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc) if status is not
        PcStatus.NOT_STARTED else None, stop_reason=stop_reason, errors=list(errors),
        error_message="agent silent" if errors else None,
        summary=CaptureSummary(packets=packets, bytes=packets * 100) if packets else None, etag="e", run_id=instance,
        storage_path=None, created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))


PARENT_RECORD = _part("0", PcStatus.UNKNOWN)


@pytest.mark.parametrize(("parts", "status", "reason"), [
    ([("0", PcStatus.RUNNING, None), ("1", PcStatus.STOPPED, "TimeExceeded")], "Running", None),
    ([("0", PcStatus.NOT_STARTED, None), ("1", PcStatus.STOPPED, "TimeExceeded")], "NotStarted", None),
    ([("0", PcStatus.STOPPED, "TimeExceeded"), ("1", PcStatus.STOPPED, "TimeExceeded")], "Stopped", "TimeExceeded"),
    ([("0", PcStatus.STOPPED, "TimeExceeded"), ("1", PcStatus.STOPPED, "ManuallyStopped"),
      ("2", PcStatus.STOPPED, "TimeExceeded")], "Stopped", "Mixed: 1 ManuallyStopped, 2 TimeExceeded"),
])
def test_the_status_is_the_instances_together(parts, status, reason):
    result = scale_set_status(PARENT_RECORD, [_part(i, s, r, packets=5) for i, s, r in parts])
    assert (result.packet_capture_status.value, result.stop_reason) == (status, reason)
    assert [i.instance_id for i in result.instances] == [i for i, _, _ in parts]


def test_a_failed_instance_makes_it_error_and_says_which_and_why():
    parts = [_part("0", PcStatus.STOPPED, "ManuallyStopped", packets=4),
             _part("1", PcStatus.ERROR, errors=[PcError.AGENT_STOPPED], packets=2)]
    result = scale_set_status(PARENT_RECORD, parts)
    assert result.packet_capture_status is PcStatus.ERROR and result.packet_capture_error == [PcError.AGENT_STOPPED]
    assert result.error_message == "instance 1: agent silent"
    assert result.summary.packets == 6 and result.status_detail == "2 instances: 1 Error, 1 Stopped"
