"""Scale set captures (targetType AzureVMSS): which instances a scope takes, and the
capture's status from its instances' parts.

The instances are those whose agents have reported (an instance's agent knows it is one
from its resource ID, .../virtualMachineScaleSets/S/virtualMachines/ID); instances that
join the scale set while a capture runs are not added to it. The status is what a user
expects: Running while any instance runs, NotStarted while any waits for its agent, then
Error if any failed, else Stopped (with the instances' stop reason when they agree,
otherwise saying so); per-instance statuses, counts and errors in packetWatchInstances."""

from __future__ import annotations

from collections import Counter

from shared.arm import (
    CaptureFile, CaptureSummary, InstanceStatus, PacketCaptureMachineScope, PacketCaptureQueryStatusResult, PcError,
    PcStatus,
)
from shared.errors import AgentNotFound, Collector, InvalidField
from shared.registry_records import CaptureRecord
from shared.resource_ids import ScaleSetId, VirtualMachineId


def _names(instance: VirtualMachineId) -> set[str]:
    """What a scope entry may call an instance: its ID, its name (`S_ID`) or its resource ID."""
    return {instance.name.lower(), instance.computer_name.lower(), instance.key}


def in_scope(scale_set: ScaleSetId, instances: list[VirtualMachineId],
             scope: PacketCaptureMachineScope | None) -> list[VirtualMachineId]:
    """ARM's rule: both lists empty, every instance; include, only those; exclude, all but
    those. An included instance with no agent is refused, naming it."""
    include = (scope.include if scope else None) or []
    exclude = {entry.lower() for entry in (scope.exclude if scope else None) or []}
    checks = Collector()
    chosen = instances
    if include:
        chosen = []
        for index, entry in enumerate(include):
            found = [instance for instance in instances if entry.lower() in _names(instance)]
            if not found:
                checks.errors.append(InvalidField(
                    f"properties.scope.include[{index}]", entry,
                    f"no agent reports for this instance of {scale_set.arm_id}; instances that report: "
                    f"{', '.join(i.name for i in instances) or 'none'}"))
            chosen += [instance for instance in found if instance not in chosen]
    checks.raise_any()
    chosen = [instance for instance in chosen if not exclude & _names(instance)]
    if not chosen:
        raise AgentNotFound(f"no instance of {scale_set.arm_id} in scope has an agent that reports (instances that "
                            f"report: {', '.join(i.name for i in instances) or 'none'})", "properties.target")
    return chosen


def _instance(part: CaptureRecord, files: list[CaptureFile] | None) -> InstanceStatus:
    summary = part.summary or CaptureSummary()
    return InstanceStatus(instance_id=part.capture.instance or "",
                          target=part.parameters.target, status=part.status, stop_reason=part.stop_reason,
                          errors=part.errors, error_message=part.error_message,
                          capture_start_time=part.capture_start_time, packets=summary.packets, bytes=summary.bytes,
                          file_paths=summary.file_paths, storage_path=part.storage_path, files=files)


def combined_status(statuses: list[PcStatus]) -> PcStatus:
    """A scale set capture's status from its instances' statuses."""
    for status in (PcStatus.RUNNING, PcStatus.NOT_STARTED, PcStatus.ERROR):
        if status in statuses:
            return status
    return PcStatus.STOPPED


def _stop_reason(parts: list[CaptureRecord]) -> str | None:
    reasons = Counter(part.stop_reason for part in parts if part.status is PcStatus.STOPPED and part.stop_reason)
    if not reasons:
        return None
    if len(reasons) == 1:
        return next(iter(reasons))
    return "Mixed: " + ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))


def scale_set_status(parent: CaptureRecord, parts: list[CaptureRecord],
                     files: dict[str, list[CaptureFile]] | None = None) -> PacketCaptureQueryStatusResult:
    """`files`: a continuous capture's files, by instance capture key."""
    statuses = [part.status for part in parts]
    status = combined_status(statuses)
    errors: list[PcError] = []
    for part in parts:
        errors += [error for error in part.errors if error not in errors]
    failed = [part for part in parts if part.status is PcStatus.ERROR]
    message = "; ".join(f"instance {part.capture.instance}: "
                        f"{part.error_message or ','.join(error.value for error in part.errors)}"
                        for part in failed) or None
    starts = [part.capture_start_time for part in parts if part.capture_start_time is not None]
    summaries = [part.summary for part in parts if part.summary is not None]
    summary = CaptureSummary(packets=sum(s.packets for s in summaries), bytes=sum(s.bytes for s in summaries),
                             kernel_drops=sum(s.kernel_drops for s in summaries),
                             file_paths=[path for s in summaries for path in s.file_paths]) if summaries else None
    counts = Counter(s.value for s in statuses)
    detail = f"{len(parts)} instances: " + ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    return PacketCaptureQueryStatusResult(
        name=parent.capture.name, id=parent.capture.arm_id, capture_start_time=min(starts) if starts else None,
        packet_capture_status=status, stop_reason=_stop_reason(parts) if status is PcStatus.STOPPED else None,
        packet_capture_error=errors if status is PcStatus.ERROR else [], summary=summary,
        error_message=message, status_detail=detail, instances=[_instance(part, (files or {}).get(part.capture.key)) for part in parts])
