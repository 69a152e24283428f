"""The ARM PacketCapture resource on the wire, as the 2026-01-01 spec defines it.

Field names are ARM's camelCase; defaults and ranges are the spec's. These models hold
what a client sent or what the API returns; the checks that need the deployment (the
capture root, the filter grammar) live in shared.capture_spec.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

# The api-versions whose packet-capture shape PacketWatch serves: the Microsoft.Network
# stable versions from 2021 on, which the Azure SDKs and CLIs in use still send.
SUPPORTED_API_VERSIONS = (
    "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2022-01-01", "2022-05-01", "2022-07-01",
    "2022-09-01", "2022-11-01", "2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01", "2023-09-01",
    "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01", "2025-01-01",
    "2025-03-01", "2025-05-01", "2025-07-01", "2025-09-01", "2026-01-01", "2026-03-01",
)
UINT32_MAX = 4294967295
DEFAULT_TOTAL_BYTES_PER_SESSION = 1073741824
MAX_TIME_LIMIT_SECONDS = 18000
MAX_LOOK_BACK_SECONDS = 3600


class PcProtocol(str, Enum):
    TCP = "TCP"
    UDP = "UDP"
    ANY = "Any"


class PcStatus(str, Enum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    STOPPED = "Stopped"
    ERROR = "Error"
    UNKNOWN = "Unknown"


class PcError(str, Enum):
    INTERNAL_ERROR = "InternalError"
    AGENT_STOPPED = "AgentStopped"
    CAPTURE_FAILED = "CaptureFailed"
    LOCAL_FILE_FAILED = "LocalFileFailed"
    STORAGE_FAILED = "StorageFailed"


class TargetType(str, Enum):
    AZURE_VM = "AzureVM"
    AZURE_VMSS = "AzureVMSS"


class ProvisioningState(str, Enum):
    SUCCEEDED = "Succeeded"
    UPDATING = "Updating"
    DELETING = "Deleting"
    FAILED = "Failed"


class StopReason(str, Enum):
    """Why a capture ended; ARM types stopReason as a free string, these are ours."""

    TIME_EXCEEDED = "TimeExceeded"
    BYTES_EXCEEDED = "TotalBytesPerSessionExceeded"
    MANUALLY_STOPPED = "ManuallyStopped"
    AGENT_SHUTDOWN = "AgentShutdown"


class ArmModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def to_arm(self) -> dict[str, Any]:
        """JSON body as ARM returns it: camelCase, no nulls."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ArmRequestModel(ArmModel):
    """A request object: property names match case-insensitively, as ARM's do, and a
    property this object does not have is refused (never dropped, which could silently
    widen a capture)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _names_any_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        canonical = _canonical_names(cls)
        renamed: dict[Any, Any] = {}
        for key, value in data.items():
            name = canonical.get(key.lower(), key) if isinstance(key, str) else key
            if name in renamed:
                raise ValueError(f"property {name!r} is given twice (as {key!r} too)")
            renamed[name] = value
        return renamed


def request_property_names() -> set[str]:
    """Every property name a packet-capture request may hold, as ARM spells it."""
    return {info.alias or name for model in ArmRequestModel.__subclasses__()
            for name, info in model.model_fields.items()}


@cache
def _canonical_names(model: type[BaseModel]) -> dict[str, str]:
    """Lower-cased property name → the name as the model declares it (its alias first)."""
    canonical = {}
    for name, info in model.model_fields.items():
        canonical[name.lower()] = name
        if info.alias:
            canonical[info.alias.lower()] = info.alias
    return canonical


UInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]


class PacketCaptureFilter(ArmRequestModel):
    protocol: PcProtocol = PcProtocol.ANY
    local_ip_address: str | None = Field(default=None, alias="localIPAddress")
    remote_ip_address: str | None = Field(default=None, alias="remoteIPAddress")
    local_port: str | None = Field(default=None, alias="localPort")
    remote_port: str | None = Field(default=None, alias="remotePort")

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            for member in PcProtocol:
                if member.value.lower() == value.lower():
                    return member
        return value


class PacketCaptureStorageLocation(ArmRequestModel):
    storage_id: str | None = Field(default=None, alias="storageId")
    storage_path: str | None = Field(default=None, alias="storagePath")
    file_path: str | None = Field(default=None, alias="filePath")
    local_path: str | None = Field(default=None, alias="localPath")


class PacketCaptureSettings(ArmRequestModel):
    file_count: Annotated[int, Field(ge=0, le=10000)] = Field(default=10, alias="fileCount")
    file_size_in_bytes: UInt32 = Field(default=104857600, alias="fileSizeInBytes")
    session_time_limit_in_seconds: Annotated[int, Field(ge=0, le=604800)] = Field(
        default=86400, alias="sessionTimeLimitInSeconds"
    )


class PacketCaptureMachineScope(ArmRequestModel):
    include: list[str] | None = None
    exclude: list[str] | None = None


class PacketCaptureParameters(ArmRequestModel):
    target: str
    scope: PacketCaptureMachineScope | None = None
    target_type: TargetType | None = Field(default=None, alias="targetType")
    bytes_to_capture_per_packet: UInt32 = Field(default=0, alias="bytesToCapturePerPacket")
    total_bytes_per_session: UInt32 = Field(
        default=DEFAULT_TOTAL_BYTES_PER_SESSION, alias="totalBytesPerSession"
    )
    time_limit_in_seconds: Annotated[int, Field(ge=0, le=MAX_TIME_LIMIT_SECONDS)] = Field(
        default=MAX_TIME_LIMIT_SECONDS, alias="timeLimitInSeconds"
    )
    storage_location: PacketCaptureStorageLocation = Field(alias="storageLocation")
    filters: list[PacketCaptureFilter] = Field(default_factory=list)
    continuous_capture: bool | None = Field(default=None, alias="continuousCapture")
    capture_settings: PacketCaptureSettings | None = Field(default=None, alias="captureSettings")
    # PacketWatch's extension: begin the file with this many seconds of packets from before the
    # capture, from the agent's look-back ring (workers/capture/look_back.py).
    look_back_seconds: Annotated[int, Field(ge=0, le=MAX_LOOK_BACK_SECONDS)] | None = Field(
        default=None, alias="lookBackSeconds")

    @property
    def continuous(self) -> bool:
        """The capture's mode, decided here alone: continuousCapture given (true or false) is a
        ring of files (shared/capture_modes.py), absent is ARM's classic capture, one file."""
        return self.continuous_capture is not None

    @property
    def seconds_limit(self) -> int:
        """The time limit in force: 0 means the largest ARM allows."""
        return self.time_limit_in_seconds or MAX_TIME_LIMIT_SECONDS

    @property
    def bytes_limit(self) -> int:
        """The byte limit in force: 0 means the largest ARM allows."""
        return self.total_bytes_per_session or UINT32_MAX


class PacketCapture(ArmRequestModel):
    """The body of PUT .../packetCaptures/{name}."""

    properties: PacketCaptureParameters


class PacketCaptureResultProperties(PacketCaptureParameters):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    provisioning_state: ProvisioningState | None = Field(default=None, alias="provisioningState")


class PacketCaptureResult(ArmModel):
    name: str | None = None
    id: str | None = None
    etag: str | None = None
    properties: PacketCaptureResultProperties | None = None


class PacketCaptureListResult(ArmModel):
    value: list[PacketCaptureResult] = Field(default_factory=list)


def format_arm_time(value: datetime) -> str:
    """UTC ISO-8601 with a Z, milliseconds only when there are any."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


class Talker(ArmModel):
    source: str
    destination: str
    packets: int
    bytes: int


class CaptureFile(ArmModel):
    """One file of a continuous capture, as queryStatus shows it in packetWatchFiles: where its
    agent wrote it, what it holds, and where it was stored (or why it could not be)."""

    index: int
    path: str
    packets: int
    bytes: int
    sha256: str
    storage_path: str | None = Field(default=None, alias="storagePath")
    upload_error: str | None = Field(default=None, alias="uploadError")


class LookBackSummary(ArmModel):
    """What a capture's look-back gave: how many packets came from before the capture, from
    when, and why fewer than asked for, if so."""

    requested_seconds: int = Field(alias="requestedSeconds")
    packets: int = 0
    earliest: datetime | None = None
    note: str | None = None


class CaptureSummary(ArmModel):
    """PacketWatch's own figures for a capture, shown beside ARM's status fields."""

    packets: int = 0
    bytes: int = 0
    kernel_drops: int = Field(default=0, alias="kernelDrops")
    file_paths: list[str] = Field(default_factory=list, alias="filePaths")
    sha256: str | None = None
    duration_seconds: float | None = Field(default=None, alias="durationSeconds")
    # Read from the files after Stopped is reported: absent until they are.
    protocols: dict[str, int] | None = None
    top_talkers: list[Talker] | None = Field(default=None, alias="topTalkers")
    look_back: LookBackSummary | None = Field(default=None, alias="lookBack")


class InstanceStatus(ArmModel):
    """One instance of a scale set capture, as queryStatus shows it in packetWatchInstances."""

    instance_id: str = Field(alias="instanceId")
    target: str
    status: PcStatus
    stop_reason: str | None = Field(default=None, alias="stopReason")
    errors: list[PcError] = Field(default_factory=list)
    error_message: str | None = Field(default=None, alias="errorMessage")
    capture_start_time: datetime | None = Field(default=None, alias="captureStartTime")
    packets: int = 0
    bytes: int = 0
    file_paths: list[str] = Field(default_factory=list, alias="filePaths")
    storage_path: str | None = Field(default=None, alias="storagePath")
    files: list[CaptureFile] | None = None  # a continuous capture's, as in packetWatchFiles


class PacketCaptureQueryStatusResult(ArmModel):
    name: str | None = None
    id: str | None = None
    capture_start_time: datetime | None = Field(default=None, alias="captureStartTime")
    packet_capture_status: PcStatus | None = Field(default=None, alias="packetCaptureStatus")
    stop_reason: str | None = Field(default=None, alias="stopReason")
    packet_capture_error: list[PcError] | None = Field(default=None, alias="packetCaptureError")
    summary: CaptureSummary | None = Field(default=None, alias="packetWatchSummary")
    error_message: str | None = Field(default=None, alias="packetWatchErrorMessage")
    stored: bool | None = Field(default=None, alias="packetWatchStored")  # a capture to a storage account: uploaded yet?
    status_detail: str | None = Field(default=None, alias="packetWatchStatusDetail")
    start_deadline: datetime | None = Field(default=None, alias="packetWatchStartDeadline")
    agent_last_seen: datetime | None = Field(default=None, alias="packetWatchAgentLastSeen")
    files: list[CaptureFile] | None = Field(default=None, alias="packetWatchFiles")  # continuous capture
    instances: list[InstanceStatus] | None = Field(default=None, alias="packetWatchInstances")  # scale set capture

    @field_serializer("capture_start_time", "start_deadline", "agent_last_seen")
    def _serialize_time(self, value: datetime | None) -> str | None:
        return format_arm_time(value) if value else None
