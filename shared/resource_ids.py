"""ARM resource IDs: parsing, case-insensitive identity, and capture resource names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidField

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,89}")
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?")


def validate_name(field: str, value: str) -> str:
    """ARM's rule for a packet capture name: 1-80 of letters, digits, `_.-`, alphanumeric start."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidField(
            field, value, "must be 1-80 letters, digits, '_', '.' or '-', start with a letter or digit "
            "and end with a letter, digit or '_'"
        )
    return value


def _segments(field: str, text: str, pattern: list[str]) -> list[str]:
    """Match `text` against /k1/v1/k2/v2... with keys compared case-insensitively."""
    if not isinstance(text, str):
        raise InvalidField(field, text, "must be a string")
    parts = text.strip().split("/")
    if len(parts) != len(pattern) + 1 or parts[0] != "":
        raise InvalidField(field, text, "is not a resource ID of the form " + "/".join([""] + pattern))
    values = []
    for part, expected in zip(parts[1:], pattern):
        if expected.startswith("{"):
            if not _SEGMENT.fullmatch(part):
                raise InvalidField(field, text, f"segment {part!r} is not a valid resource name")
            values.append(part)
        elif part.lower() != expected.lower():
            raise InvalidField(field, text, f"expected {expected!r} where it has {part!r}")
    return values


@dataclass(frozen=True)
class ScaleSetId:
    """A virtual machine scale set (targetType AzureVMSS)."""

    subscription: str
    resource_group: str
    name: str

    PATTERN = ["subscriptions", "{sub}", "resourceGroups", "{rg}", "providers", "Microsoft.Compute",
               "virtualMachineScaleSets", "{vmss}"]

    @classmethod
    def parse(cls, text: str, field: str = "target") -> "ScaleSetId":
        sub, rg, name = _segments(field, text, cls.PATTERN)
        return cls(sub, rg, name)

    @property
    def arm_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.name}")

    @property
    def key(self) -> str:
        return self.arm_id.lower()

    def instance(self, instance_id: str) -> "VirtualMachineId":
        return VirtualMachineId(self.subscription, self.resource_group, instance_id, self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScaleSetId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class VirtualMachineId:
    """A VM, or an instance of a (uniform) scale set: then `name` is its instance ID and
    `scale_set` the set's name, as its resource ID .../virtualMachineScaleSets/S/virtualMachines/ID says."""

    subscription: str
    resource_group: str
    name: str
    scale_set: str | None = None

    PATTERN = ["subscriptions", "{sub}", "resourceGroups", "{rg}", "providers", "Microsoft.Compute",
               "virtualMachines", "{vm}"]
    INSTANCE_PATTERN = ScaleSetId.PATTERN + ["virtualMachines", "{id}"]

    @classmethod
    def parse(cls, text: str, field: str = "target") -> "VirtualMachineId":
        if isinstance(text, str) and text.count("/") == len(cls.INSTANCE_PATTERN):
            sub, rg, scale_set, instance = _segments(field, text, cls.INSTANCE_PATTERN)
            return cls(sub, rg, instance, scale_set)
        sub, rg, name = _segments(field, text, cls.PATTERN)
        return cls(sub, rg, name)

    @property
    def arm_id(self) -> str:
        if self.scale_set is not None:
            return f"{self.scale_set_id.arm_id}/virtualMachines/{self.name}"
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachines/{self.name}")

    @property
    def scale_set_id(self) -> ScaleSetId:
        assert self.scale_set is not None
        return ScaleSetId(self.subscription, self.resource_group, self.scale_set)

    @property
    def computer_name(self) -> str:
        """The name Azure shows: the VM's, or `{scaleSet}_{instanceId}` for an instance."""
        return f"{self.scale_set}_{self.name}" if self.scale_set is not None else self.name

    @property
    def key(self) -> str:
        """Identity: ARM IDs compare case-insensitively."""
        return self.arm_id.lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VirtualMachineId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def parse_target(text: str, field: str = "target") -> VirtualMachineId | ScaleSetId:
    """A capture target's resource ID: a VM (or one scale set instance), or a scale set; the
    VM's error when it is neither."""
    try:
        return VirtualMachineId.parse(text, field)
    except InvalidField as not_a_vm:
        try:
            return ScaleSetId.parse(text, field)
        except InvalidField:
            raise not_a_vm from None


@dataclass(frozen=True)
class CaptureId:
    """A packet capture; with `instance`, one scale set instance's part of a scale set
    capture (recorded beside it, never listed on its own)."""

    subscription: str
    resource_group: str
    network_watcher: str
    name: str
    instance: str | None = None

    @property
    def watcher_path(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Network/networkWatchers/{self.network_watcher}")

    @property
    def arm_id(self) -> str:
        base = f"{self.watcher_path}/packetCaptures/{self.name}"
        return base if self.instance is None else f"{base}/instances/{self.instance}"

    @property
    def key(self) -> str:
        return self.arm_id.lower()

    @property
    def parent(self) -> "CaptureId":
        return CaptureId(self.subscription, self.resource_group, self.network_watcher, self.name)

    def of_instance(self, instance: str) -> "CaptureId":
        return CaptureId(self.subscription, self.resource_group, self.network_watcher, self.name, instance)

    @classmethod
    def parse(cls, text: str, field: str = "id") -> "CaptureId":
        pattern = ["subscriptions", "{sub}", "resourceGroups", "{rg}", "providers", "Microsoft.Network",
                   "networkWatchers", "{nw}", "packetCaptures", "{name}"]
        if isinstance(text, str) and text.count("/") == len(pattern) + 2:
            sub, rg, nw, name, instance = _segments(field, text, pattern + ["instances", "{instance}"])
            return cls(sub, rg, nw, validate_name(field, name), instance)
        sub, rg, nw, name = _segments(field, text, pattern)
        return cls(sub, rg, nw, validate_name(field, name))
