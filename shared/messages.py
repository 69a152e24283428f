"""The messages that cross the broker between functions/ and workers/: task names and
payloads, defined once, and the one table that pairs them (TASK_PAYLOADS), which workers
register their tasks from and senders name their messages by."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, Field

from shared.arm import CaptureSummary, PacketCaptureParameters, PcError, PcStatus, Talker


class TaskName(str, Enum):
    CAPTURE = "packetwatch.agent.capture"
    STOP = "packetwatch.agent.stop"
    UPLOAD = "packetwatch.agent.upload"
    STATUS = "packetwatch.control.status"
    UPLOADED = "packetwatch.control.uploaded"
    FILE_CLOSED = "packetwatch.control.file_closed"
    STATISTICS = "packetwatch.control.statistics"
    HEARTBEAT = "packetwatch.control.heartbeat"
    TICK = "packetwatch.control.tick"
    NOTIFY = "packetwatch.notify.deliver"


class UploadTarget(BaseModel):
    """Where the agent stores a finished capture: one blob, with a SAS that lets it create and
    write that blob only, until it expires. A secret: never logged."""

    url: str
    retry_seconds: float


class CaptureRequest(BaseModel):
    capture_id: str
    run_id: str
    target: str
    parameters: PacketCaptureParameters
    relative_file_path: str
    requested_at: datetime
    start_by: datetime | None = None  # an agent that gets the request later never starts it
    upload: UploadTarget | None = None  # set when storageLocation.storageId is


class StopRequest(BaseModel):
    capture_id: str
    run_id: str
    requested_at: datetime


class StatusEvent(BaseModel):
    capture_id: str
    run_id: str
    status: PcStatus
    reported_at: datetime
    capture_start_time: datetime | None = None
    stop_reason: str | None = None
    errors: list[PcError] = Field(default_factory=list)
    error_message: str | None = None
    summary: CaptureSummary | None = None


class CaptureStatistics(BaseModel):
    """What a finished capture's files hold, read by the agent after it reported the capture's
    end (Stopped is reported as soon as the file is closed): added to that run's summary."""

    capture_id: str
    run_id: str
    sha256: str | None = None  # of the one file of a one-file capture
    protocols: dict[str, int]
    top_talkers: list[Talker]


# An agent that misses this many heartbeats in a row is offline: its running captures end
# in Error/AgentStopped, and it is no longer offered as a capture target.
SILENT_HEARTBEATS = 3


class RunProgress(BaseModel):
    packets: int
    bytes: int


class Heartbeat(BaseModel):
    vm_id: str
    version: str
    hostname: str
    interface: str | None = None
    reported_at: datetime
    running: list[str] = Field(default_factory=list)
    location: str | None = None  # the VM's Azure region, when the agent knows it
    progress: dict[str, RunProgress] = Field(default_factory=dict)  # by run ID: what each capture wrote so far


class FileClosed(BaseModel):
    """An agent closed one file of a continuous capture: what it holds. The control worker
    records it and, for a capture with a storage account, sends the agent its upload."""

    capture_id: str
    run_id: str
    index: int
    local_path: str
    packets: int
    bytes: int
    sha256: str
    closed_at: datetime


class UploadRequest(BaseModel):
    """Sent by an agent to its own queue when a capture with a storage account ends (or by
    the control worker for each file of a continuous capture), so the upload survives an
    agent restart."""

    capture_id: str
    run_id: str
    upload: UploadTarget
    local_path: str
    keep_local: bool
    sha256: str = ""  # the file's SHA-256 when the sender has read it; else the agent hashes it first
    file_index: int | None = None  # the file of a continuous capture


class UploadResult(BaseModel):
    capture_id: str
    run_id: str
    storage_path: str | None = None
    error_message: str | None = None
    local_path: str
    file_index: int | None = None


class Notification(BaseModel):
    """A CloudEvents 1.0 event to deliver to every configured webhook."""

    id: str
    type: str
    subject: str
    time: datetime
    data: dict


class Tick(BaseModel):
    """The control worker's clock (it sweeps silent agents and unstarted captures on it)."""


# Every task, with the payload model it carries: the one place a name meets its model.
TASK_PAYLOADS: dict[TaskName, type[BaseModel]] = {
    TaskName.CAPTURE: CaptureRequest, TaskName.STOP: StopRequest, TaskName.UPLOAD: UploadRequest,
    TaskName.STATUS: StatusEvent, TaskName.UPLOADED: UploadResult, TaskName.FILE_CLOSED: FileClosed,
    TaskName.STATISTICS: CaptureStatistics, TaskName.HEARTBEAT: Heartbeat, TaskName.TICK: Tick,
    TaskName.NOTIFY: Notification,
}
_TASK_OF = {model: name for name, model in TASK_PAYLOADS.items()}


def task_of(message: BaseModel) -> TaskName:
    """The task a payload model is sent as."""
    return _TASK_OF[type(message)]


def body_of(message: BaseModel) -> dict:
    """A payload as it travels: JSON, ARM's property names where a model has them."""
    return message.model_dump(mode="json", by_alias=True)


class Outgoing(BaseModel):
    """One task message bound for one durable queue, as the outbox keeps it until the
    broker confirms it."""

    task: TaskName
    queue: str
    payload: dict

    @classmethod
    def of(cls, message: BaseModel, queue: str) -> "Outgoing":
        return cls(task=task_of(message), queue=queue, payload=body_of(message))
