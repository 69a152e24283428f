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
class VirtualMachineId:
    subscription: str
    resource_group: str
    name: str

    PATTERN = ["subscriptions", "{sub}", "resourceGroups", "{rg}", "providers", "Microsoft.Compute",
               "virtualMachines", "{vm}"]

    @classmethod
    def parse(cls, text: str, field: str = "target") -> "VirtualMachineId":
        sub, rg, name = _segments(field, text, cls.PATTERN)
        return cls(sub, rg, name)

    @property
    def arm_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachines/{self.name}")

    @property
    def key(self) -> str:
        """Identity: ARM IDs compare case-insensitively."""
        return self.arm_id.lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VirtualMachineId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class CaptureId:
    subscription: str
    resource_group: str
    network_watcher: str
    name: str

    @property
    def watcher_path(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Network/networkWatchers/{self.network_watcher}")

    @property
    def arm_id(self) -> str:
        return f"{self.watcher_path}/packetCaptures/{self.name}"

    @property
    def key(self) -> str:
        return self.arm_id.lower()

    @classmethod
    def parse(cls, text: str, field: str = "id") -> "CaptureId":
        pattern = ["subscriptions", "{sub}", "resourceGroups", "{rg}", "providers", "Microsoft.Network",
                   "networkWatchers", "{nw}", "packetCaptures", "{name}"]
        sub, rg, nw, name = _segments(field, text, pattern)
        return cls(sub, rg, nw, validate_name(field, name))
