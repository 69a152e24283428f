"""A capture's PUT parameters from az's flags (both forms of the packet-capture commands,
cli/az/): the request model the typed client takes. The API checks every value (one
validation path); this shapes the body, reads what a flag points at (a filters file, az's
capture-settings shorthand) and refuses, as the API would, a body of the wrong shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.arm_client import capture_parameters
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_TIME_LIMIT_SECONDS, PacketCaptureParameters

CAPTURE_SETTINGS = {"file-count": "fileCount", "file-size-in-bytes": "fileSizeInBytes",
                    "session-time-limit-in-seconds": "sessionTimeLimitInSeconds"}


class CliError(RuntimeError):
    """One line for the user; the command exits non-zero."""


def read_filters(text: str | None, flag: str = "--filters") -> list[dict]:
    """--filters: a JSON list of filter objects, or @FILE holding one."""
    if text is None:
        return []
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise CliError(f"{flag}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        filters = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{flag}: not JSON: {exc}") from None
    if not isinstance(filters, list) or not all(isinstance(item, dict) for item in filters):
        raise CliError(f"{flag}: must be a JSON list of filter objects")
    return filters


def capture_settings_of(words: list[str] | None) -> dict[str, int] | None:
    """az's shorthand: file-count=10 file-size-in-bytes=104857600 session-time-limit-in-seconds=86400."""
    if not words:
        return None
    settings = {}
    for word in words:
        key, _, value = word.partition("=")
        if key not in CAPTURE_SETTINGS or not value.isdigit():
            raise CliError(f"--capture-settings: {word!r} is not KEY=NUMBER with KEY one of "
                           f"{', '.join(CAPTURE_SETTINGS)}")
        settings[CAPTURE_SETTINGS[key]] = int(value)
    return settings


@dataclass(frozen=True)
class CaptureFlags:
    """az network watcher packet-capture create's flags, the target and account resolved to IDs."""

    target: str
    target_type: str | None = None
    storage_account: str | None = None
    storage_path: str | None = None
    file_path: str | None = None
    local_path: str | None = None
    capture_size: int = 0
    capture_limit: int = DEFAULT_TOTAL_BYTES_PER_SESSION
    time_limit: int = MAX_TIME_LIMIT_SECONDS
    filters: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    continuous_capture: str | None = None  # "true" | "false", as az takes it
    capture_settings: list[str] | None = None
    look_back_seconds: int | None = None

    def parameters(self) -> PacketCaptureParameters:
        """The request model; ApiError naming every field of the wrong shape, as the API's."""
        return capture_parameters(self.properties())

    def properties(self) -> dict[str, Any]:
        if (self.include or self.exclude) and self.target_type != "AzureVMSS":
            raise CliError("usage error: --include/--exclude apply with --target-type AzureVMSS")
        location = {"storageId": self.storage_account, "storagePath": self.storage_path,
                    "filePath": self.file_path, "localPath": self.local_path}
        properties: dict[str, Any] = {
            "target": self.target, "bytesToCapturePerPacket": self.capture_size,
            "totalBytesPerSession": self.capture_limit, "timeLimitInSeconds": self.time_limit,
            "storageLocation": {key: value for key, value in location.items() if value},
            "filters": read_filters(self.filters)}
        if self.target_type:
            properties["targetType"] = self.target_type
        if self.include or self.exclude:
            properties["scope"] = {"include": self.include or [], "exclude": self.exclude or []}
        if self.continuous_capture is not None:
            properties["continuousCapture"] = self.continuous_capture.lower() == "true"
        settings = capture_settings_of(self.capture_settings)
        if settings is not None:
            properties["captureSettings"] = settings
        if self.look_back_seconds is not None:
            properties["lookBackSeconds"] = self.look_back_seconds
        return properties
