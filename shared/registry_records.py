"""The registry's records as its callers see them, and how table rows become them."""

from __future__ import annotations

from typing import Any
from sqlalchemy import Row
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace

from shared.arm import (
    CaptureSummary, PacketCaptureParameters, PacketCaptureQueryStatusResult, PacketCaptureResult,
    PacketCaptureResultProperties, PcError, PcStatus, ProvisioningState, TargetType,
)
from shared.messages import Outgoing
from shared.outbox import PendingMessage
from shared.resource_ids import CaptureId


def plans_a_blob(parameters: PacketCaptureParameters) -> bool:
    """Whether the capture is one file to a storage account, whose blob URL is known from create."""
    return bool(parameters.storage_location.storage_id) and not parameters.continuous \
        and parameters.target_type is not TargetType.AZURE_VMSS


def listed_properties(parameters: PacketCaptureParameters, storage_path: str | None) -> str | None:
    """The properties as GET list shows them, stored with the capture; None while a blob URL
    it should show is not known (the list then builds them as GET does)."""
    if storage_path is None and plans_a_blob(parameters):
        return None
    return result_properties(parameters, storage_path).model_dump_json(by_alias=True, exclude_none=True)


def result_properties(parameters: PacketCaptureParameters, storage_path: str | None) -> PacketCaptureResultProperties:
    """A capture's properties as ARM shows them, with the blob URL of its file when known."""
    properties = PacketCaptureResultProperties(**parameters.model_dump(by_alias=False),
                                               provisioning_state=ProvisioningState.SUCCEEDED)
    if storage_path:
        properties.storage_location = properties.storage_location.model_copy(update={"storage_path": storage_path})
    return properties


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass(frozen=True)
class CaptureRecord:
    capture: CaptureId
    parameters: PacketCaptureParameters
    status: PcStatus
    capture_start_time: datetime | None
    stop_reason: str | None
    errors: list[PcError]
    error_message: str | None
    summary: CaptureSummary | None
    etag: str
    run_id: str
    storage_path: str | None
    created_at: datetime

    def to_result(self, planned_path: str | None = None) -> PacketCaptureResult:
        """ARM's resource: storagePath is where the file was stored, else where it will be."""
        return PacketCaptureResult(name=self.capture.name, id=self.capture.arm_id, etag=self.etag,
                                   properties=result_properties(self.parameters, self.storage_path or planned_path))

    def to_status(self) -> PacketCaptureQueryStatusResult:
        return PacketCaptureQueryStatusResult(
            name=self.capture.name, id=self.capture.arm_id, capture_start_time=self.capture_start_time,
            packet_capture_status=self.status, stop_reason=self.stop_reason,
            packet_capture_error=self.errors, summary=self.summary, error_message=self.error_message,
            stored=bool(self.storage_path) if self.parameters.storage_location.storage_id
            and not self.parameters.continuous else None,
        )


@dataclass(frozen=True)
class AlertClaim:
    """At most one capture per (VM, alert rule) at a time."""

    vm_key: str
    rule_key: str


@dataclass(frozen=True)
class InstancePart:
    """One scale set instance's part of a scale set capture: a capture record of its own
    (CaptureId with `instance`), never listed with the watcher's captures, run by that
    instance's agent exactly as a VM capture is."""

    capture: CaptureId
    parameters: PacketCaptureParameters
    target_key: str
    run_id: str
    request: Outgoing


@dataclass(frozen=True)
class Created:
    record: CaptureRecord | None  # None only when an alert's claim is held by another capture (`holder`)
    created: bool
    pending: list[PendingMessage]
    holder: CaptureId | None = None

    @property
    def capture(self) -> CaptureRecord:
        """The capture recorded: a create with no alert claim always has one."""
        if self.record is None:
            raise LookupError(f"nothing was recorded: the alert's claim is held by {self.holder}")
        return self.record


@dataclass(frozen=True)
class AgentRecord:
    vm_id: str
    version: str
    hostname: str
    last_seen: datetime
    running: list[str]
    interface: str | None = None
    location: str | None = None
    progress: dict[str, dict[str, int]] = field(default_factory=dict)  # by run: packets and bytes so far


def record_of(row: Any) -> CaptureRecord:  # a packet_captures Row, or one made up of its values
    return CaptureRecord(
        capture=CaptureId.parse(row.arm_id),
        parameters=PacketCaptureParameters.model_validate_json(row.parameters),
        status=PcStatus(row.status),
        capture_start_time=as_utc(row.capture_start_time),
        stop_reason=row.stop_reason,
        errors=[PcError(e) for e in json.loads(row.errors)],
        error_message=row.error_message,
        summary=CaptureSummary.model_validate_json(row.summary) if row.summary else None,
        etag=row.etag,
        run_id=row.run_id,
        storage_path=row.storage_path,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
    )


def new_record(values: dict[str, object]) -> CaptureRecord:
    """A row just inserted with `values` (row_values), as reading it back would give it."""
    return record_of(SimpleNamespace(capture_start_time=None, stop_reason=None, error_message=None, summary=None,
                                     storage_path=None, **values))


def row_values(capture: CaptureId, parameters: PacketCaptureParameters, target_key: str, run_id: str,
               created_at: datetime, watcher_key: str, status: PcStatus,
               planned_path: str | None = None) -> dict[str, object]:
    """A new capture's row; `listed` holds its properties as GET list shows them (with the blob
    URL its file will have, when one is planned), so the list is read, not rebuilt."""
    return dict(key=capture.key, arm_id=capture.arm_id, watcher_key=watcher_key, name=capture.name,
                target_key=target_key, parameters=parameters.model_dump_json(by_alias=True, exclude_none=True),
                listed=listed_properties(parameters, planned_path), status=status.value,
                errors="[]", etag=new_etag(), run_id=run_id, stop_requested=0, created_at=created_at)


def agent_of(row: Row) -> AgentRecord:
    return AgentRecord(row.vm_id, row.version, row.hostname, as_utc(row.last_seen),  # type: ignore[arg-type]
                       json.loads(row.running), row.interface, row.location,
                       json.loads(row.progress) if row.progress else {})
