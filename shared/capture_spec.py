"""A create request checked against the rules the wire model cannot know by itself:
the filter grammar, the capture root, the target's form and what is supported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.arm import PacketCapture, PacketCaptureParameters, TargetType
from shared.bpf import compile_filters
from shared.errors import InvalidField
from shared.filters import FilterSpec, parse_filters
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.storage_accounts import storage_account_name
from shared.storage_layout import relative_capture_path, spool_relative_path


def parse_body(body: object) -> PacketCapture:
    """The PUT body as a PacketCapture, or InvalidField naming the first bad field."""
    try:
        return PacketCapture.model_validate(body)
    except ValidationError as exc:
        raise InvalidField.from_validation(exc) from None


@dataclass(frozen=True)
class CaptureSpec:
    capture: CaptureId
    target: VirtualMachineId
    filters: tuple[FilterSpec, ...]
    relative_file_path: str
    file_path_requested: bool


def build_spec(capture: CaptureId, params: PacketCaptureParameters, capture_root: str,
               created: datetime) -> CaptureSpec:
    prefix = "properties"
    target = VirtualMachineId.parse(params.target, f"{prefix}.target")
    if params.target_type is TargetType.AZURE_VMSS:
        raise InvalidField(f"{prefix}.targetType", "AzureVMSS", "scale-set targets are not supported yet")
    if params.scope is not None and (params.scope.include or params.scope.exclude):
        raise InvalidField(f"{prefix}.scope", params.scope.to_arm(), "scope applies to AzureVMSS targets only")
    if params.continuous_capture or params.capture_settings is not None:
        raise InvalidField(f"{prefix}.continuousCapture", params.continuous_capture,
                           "continuous capture is not supported yet")
    location = params.storage_location
    if location.local_path is not None:
        raise InvalidField(f"{prefix}.storageLocation.localPath", location.local_path,
                           "is only valid with continuous capture; use filePath")
    if not location.storage_id and not location.file_path:
        raise InvalidField(f"{prefix}.storageLocation", location.to_arm(),
                           "needs storageId, filePath or both")
    if location.storage_id:
        storage_account_name(location.storage_id, f"{prefix}.storageLocation.storageId")
    filters = parse_filters(params.filters, f"{prefix}.filters")
    try:
        compile_filters(filters)
    except InvalidField as exc:
        raise exc.at(prefix) from None
    if location.file_path:
        relative = relative_capture_path(location.file_path, capture_root, f"{prefix}.storageLocation.filePath")
    else:
        relative = spool_relative_path(capture, created)
    return CaptureSpec(capture, target, filters, relative, bool(location.file_path))
