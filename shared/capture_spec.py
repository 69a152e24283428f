"""A create request checked against the rules the wire model cannot know by itself:
the filter grammar, the capture root, the target's form and what is supported."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.arm import PacketCapture, PacketCaptureParameters, TargetType, request_property_names
from shared.bpf import compile_filters
from shared.capture_modes import RingSettings
from shared.errors import Collector, InvalidField, InvalidFields
from shared.filters import FilterSpec, parse_filters
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId, parse_target
from shared.storage_accounts import storage_account_name
from shared.storage_layout import container_of, relative_capture_path, spool_relative_path


def parse_body(body: object, value_checks: Callable[[PacketCaptureParameters], object] | None = None) -> PacketCapture:
    """The PUT body as a PacketCapture, or InvalidField naming every bad field. When the body's
    shape is wrong (an unknown enum value, a number out of range, an unknown property), the
    values `value_checks` judges (addresses, ports, paths, the target) are checked too, on the
    body without the fields already refused, so one 400 names every bad value."""
    try:
        return PacketCapture.model_validate(body)
    except ValidationError as exc:
        errors = [InvalidField.from_validation(exc, known_names=request_property_names())]
        rest = _without_fields(body, [problem["loc"] for problem in exc.errors()])
        if rest is not None and value_checks is not None:
            checks = Collector()
            checks.check(value_checks, rest.properties)
            errors += checks.errors
        raise InvalidFields.of(errors) from None


def _without_fields(body: object, locations: list[tuple[int | str, ...]]) -> PacketCapture | None:
    """The body with the fields at `locations` left out (their defaults apply), if that makes
    a valid PacketCapture; None when it does not, or a location cannot be left out alone."""
    rest = copy.deepcopy(body)
    for location in locations:
        if not location or not _remove(rest, location):
            return None
    try:
        return PacketCapture.model_validate(rest)
    except ValidationError:
        return None


def _remove(node: object, location: tuple[int | str, ...]) -> bool:
    """Remove the property at `location` (names matched in any case, as ARM's are)."""
    *parents, last = location
    for part in parents:
        node = _child(node, part)
        if node is None:
            return False
    if not isinstance(node, dict) or not isinstance(last, str):
        return False
    key = next((key for key in node if isinstance(key, str) and key.lower() == last.lower()), None)
    if key is None:
        return False
    del node[key]
    return True


def _child(node: object, part: int | str) -> object:
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    if isinstance(node, dict) and isinstance(part, str):
        return next((value for key, value in node.items() if isinstance(key, str) and key.lower() == part.lower()),
                    None)
    return None


@dataclass(frozen=True)
class CaptureSpec:
    """A capture as its agent runs it; for a scale set, what each instance's part is made from."""

    capture: CaptureId
    target: VirtualMachineId | ScaleSetId
    filters: tuple[FilterSpec, ...]
    relative_file_path: str

    @property
    def vm(self) -> VirtualMachineId:
        """The VM this capture (or a scale set capture's instance part) runs on."""
        if not isinstance(self.target, VirtualMachineId):
            raise TypeError(f"{self.capture.arm_id} targets a scale set: each instance part runs on its own VM")
        return self.target

    def for_instance(self, instance: VirtualMachineId) -> "CaptureSpec":
        return CaptureSpec(self.capture.of_instance(instance.name), instance, self.filters, self.relative_file_path)


def _target(params: PacketCaptureParameters, prefix: str) -> VirtualMachineId | ScaleSetId:
    """targetType AzureVMSS: a scale set; otherwise a VM (or one scale set instance)."""
    field = f"{prefix}.target"
    if params.target_type is TargetType.AZURE_VMSS:
        return ScaleSetId.parse(params.target, field)
    target = parse_target(params.target, field)
    if isinstance(target, ScaleSetId):
        raise InvalidField(field, params.target, "is a scale set: set targetType to AzureVMSS")
    return target


def _supported(params: PacketCaptureParameters, prefix: str) -> None:
    if params.scope is not None and (params.scope.include or params.scope.exclude) \
            and params.target_type is not TargetType.AZURE_VMSS:
        raise InvalidField(f"{prefix}.scope", params.scope.to_arm(), "scope applies to AzureVMSS targets only")
    if params.capture_settings is not None and not params.continuous:
        raise InvalidField(f"{prefix}.captureSettings", params.capture_settings.to_arm(),
                           "applies to continuous capture only: set continuousCapture to true (a rolling ring of "
                           "files) or false (files until fileCount are full)")
    ring = RingSettings.of(params)
    smallest = RingSettings.smallest_file(params.bytes_to_capture_per_packet)
    if ring is not None and ring.file_bytes < smallest:
        raise InvalidField(f"{prefix}.captureSettings.fileSizeInBytes", ring.file_bytes,
                           f"must hold one whole packet: at least {smallest} bytes with bytesToCapturePerPacket "
                           f"{params.bytes_to_capture_per_packet}")


def _location(capture: CaptureId, params: PacketCaptureParameters, capture_root: str, created: datetime,
              prefix: str) -> str:
    """The capture file's path relative to the capture root: filePath for a classic capture,
    localPath for a continuous one (ARM gives each mode its own), else the spool for upload."""
    location = params.storage_location
    where = f"{prefix}.storageLocation"
    continuous = params.continuous
    used, path = ("localPath", location.local_path) if continuous else ("filePath", location.file_path)
    refused, other = ("filePath", location.file_path) if continuous else ("localPath", location.local_path)
    checks = Collector()
    if other is not None:
        checks.errors.append(InvalidField(f"{where}.{refused}", other, f"is invalid with{'' if continuous else 'out'} "
                                          f"continuousCapture; use {used}"))
    if not location.storage_id and not path:
        checks.errors.append(InvalidField(f"{where}.{used}" if continuous else where, location.to_arm(),
                                          f"needs storageId, {used} or both"))
    if location.storage_id:
        checks.check(storage_account_name, location.storage_id, f"{where}.storageId")
    if location.storage_path:
        if not location.storage_id:
            checks.errors.append(InvalidField(f"{where}.storagePath", location.storage_path,
                                              "names a container of the account in storageId: give storageId too"))
        checks.check(container_of, location.storage_path, f"{where}.storagePath")
    relative = None
    if path:
        relative = checks.check(relative_capture_path, path, capture_root, f"{where}.{used}")
    checks.raise_any()
    return relative or spool_relative_path(capture, created)


def _filters(params: PacketCaptureParameters, prefix: str) -> tuple[FilterSpec, ...]:
    filters = parse_filters(params.filters, f"{prefix}.filters")
    try:
        compile_filters(filters)
    except InvalidField as exc:
        raise exc.at(prefix) from None
    return filters


def build_spec(capture: CaptureId, params: PacketCaptureParameters, capture_root: str,
               created: datetime) -> CaptureSpec:
    """The capture as the agent will run it; InvalidField naming every value that is wrong."""
    prefix = "properties"
    checks = Collector()
    target = checks.check(_target, params, prefix)
    checks.check(_supported, params, prefix)
    relative = checks.check(_location, capture, params, capture_root, created, prefix)
    filters = checks.check(_filters, params, prefix)
    checks.raise_any()
    assert target is not None and filters is not None and relative is not None  # no check failed
    return CaptureSpec(capture, target, filters, relative)
