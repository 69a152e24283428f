"""Error classes that carry the data a caller needs to show a precise message."""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[object, ...]) -> str:
    """pydantic's error location as the field path users write: `properties.filters[1].localPort`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


class InvalidField(ValueError):
    """A value supplied by a user is not acceptable; names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value!r} is not valid: {reason}")

    @classmethod
    def from_validation(cls, error: ValidationError, prefix: str = "") -> "InvalidField":
        """The first problem pydantic found, with its field path under `prefix`."""
        first = error.errors()[0]
        where = field_path(first["loc"])
        field = f"{prefix}.{where}" if prefix and where else (prefix or where or "body")
        return cls(field, first.get("input"), first["msg"])

    def at(self, prefix: str) -> "InvalidField":
        """The same error with its field placed under `prefix` (e.g. 'filters[1]')."""
        return InvalidField(f"{prefix}.{self.field}" if self.field else prefix, self.value, self.reason)


class CaptureNotFound(LookupError):
    def __init__(self, capture_id: str) -> None:
        self.capture_id = capture_id
        super().__init__(f"packet capture {capture_id} was not found")


class CaptureConflict(RuntimeError):
    """A capture with that name exists and cannot be replaced in its current state."""

    def __init__(self, capture_id: str, reason: str) -> None:
        self.capture_id = capture_id
        self.reason = reason
        super().__init__(f"packet capture {capture_id}: {reason}")
