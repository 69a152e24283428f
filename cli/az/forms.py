"""The two forms of the packet-capture commands in the one command table, and how each
prints its result and its failure.

- az's (`packetwatch network watcher …`, `packetwatch vm extension show`): objects as az
  prints them (ARM resources with `properties` flattened and `resourceGroup` added), and
  errors as az reports them: `ERROR: (Code) message`, exit 3 for a resource that is not
  there, 1 for any other error, 2 for a usage error; the API's URL named when it cannot be
  reached.
- the short forms (`packetwatch packet-capture …`, `packetwatch agent show`, `packetwatch
  queue …`): objects as the
  API answers them, `-o table` with PacketWatch's columns, and any error as one
  `packetwatch: …` line with exit 2.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum
from typing import Any

import httpx
from knack.util import CLIError

from cli.arm_client import ApiError
from cli.az.connection import MissingSetting
from cli.az.shapes import flattened
from cli.capture_body import CliError
from shared.api_views import NetworkWatcher
from shared.arm import ArmModel, PacketCaptureResult
from shared.errors import InvalidField, PacketWatchError

SHORT_GROUPS = ("packet-capture", "agent", "queue")
TABLE_COLUMNS = {
    "capture": [("Name", "name"), ("Target", "properties.target"), ("ProvisioningState", "properties.provisioningState"),
                ("TimeLimit", "properties.timeLimitInSeconds"), ("FilePath", "properties.storageLocation.filePath"),
                ("StoragePath", "properties.storageLocation.storagePath")],
    "status": [("Name", "name"), ("Status", "packetCaptureStatus"), ("StartTime", "captureStartTime"),
               ("StopReason", "stopReason"), ("Errors", "packetCaptureError"), ("Packets", "packetWatchSummary.packets")],
    "agent": [("VM", "vm"), ("Status", "status"), ("Version", "version"), ("Host", "hostname"),
              ("Interface", "interface"), ("LastSeen", "lastSeen"), ("Running", "runningCaptures")],
}


class Form(Enum):
    AZ = "az"
    SHORT = "short"

    @classmethod
    def of(cls, argv: list[str]) -> "Form":
        return cls.SHORT if argv and argv[0] in SHORT_GROUPS else cls.AZ


def presented(result: Any, form: Form) -> Any:
    """A command's models as its form prints them."""
    if isinstance(result, list):
        return [presented(item, form) for item in result]
    if not isinstance(result, ArmModel):
        return result
    shown = result.to_arm()
    if form is Form.AZ and isinstance(result, (PacketCaptureResult, NetworkWatcher)):
        return flattened(shown)
    return shown


def _api_of(error: httpx.HTTPError) -> str:
    try:
        url = error.request.url
    except RuntimeError:
        return "the PacketWatch API"
    return f"{url.scheme}://{url.netloc.decode()}"


def failure(error: Exception, form: Form) -> tuple[str, int] | None:
    """The line a failed command prints (to standard error) and its exit code; None for an
    error that is a bug (knack's own report)."""
    if form is Form.SHORT:
        if isinstance(error, httpx.HTTPError):
            return f"packetwatch: cannot reach the API: {error}", 2
        if isinstance(error, (ApiError, CliError, CLIError, InvalidField)):
            return f"packetwatch: {error}", 2
        if isinstance(error, PacketWatchError):
            return f"packetwatch: {error}", 1
        return None
    if isinstance(error, ApiError):
        return f"({error.code}) {error.message}", 3 if error.status == 404 else 1
    if isinstance(error, MissingSetting):
        return error.as_az_says, 1
    if isinstance(error, httpx.HTTPError):
        return (f"cannot reach the PacketWatch API at {_api_of(error)}: {error or type(error).__name__} "
                f"(set PACKETWATCH_API_URL)"), 1
    if isinstance(error, (CliError, CLIError, PacketWatchError)):
        return str(error), 1
    return None


def _cell(item: dict, path: str) -> str:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def table_of(kind: str) -> Any:
    """The short forms' `-o table` of a kind of object: PacketWatch's columns, in order."""
    def rows(result: Any) -> list[OrderedDict]:
        return [OrderedDict((title, _cell(item, path)) for title, path in TABLE_COLUMNS[kind])
                for item in (result if isinstance(result, list) else [result])]
    return rows
