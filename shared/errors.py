"""Error classes that carry the data a caller needs to show a precise message."""

from __future__ import annotations


class InvalidField(ValueError):
    """A value supplied by a user is not acceptable; names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value!r} is not valid: {reason}")

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
