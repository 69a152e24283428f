"""The capture registry: what captures exist and what state each is in (SQLAlchemy;
SQLite by default, PostgreSQL when configured).

Status only moves forward: NotStarted → Running → Stopped | Error. Each event is applied
with a conditional UPDATE, so a duplicate or late one changes nothing, even with several
writers at once.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, delete, event, func, insert, select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.arm import (
    CaptureSummary, PacketCaptureParameters, PacketCaptureQueryStatusResult, PacketCaptureResult,
    PacketCaptureResultProperties, PcError, PcStatus, ProvisioningState,
)
from shared.errors import CaptureConflict, CaptureNotFound
from shared.messages import Heartbeat, StatusEvent, UploadResult
from shared.resource_ids import CaptureId

# The statuses each status may follow: status only moves forward.
COMES_AFTER = {
    PcStatus.RUNNING: (PcStatus.NOT_STARTED,),
    PcStatus.STOPPED: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
    PcStatus.ERROR: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
}

metadata = MetaData()

captures = Table(
    "packet_captures", metadata,
    Column("key", String(512), primary_key=True),
    Column("arm_id", String(512), nullable=False),
    Column("watcher_key", String(512), nullable=False, index=True),
    Column("name", String(80), nullable=False),
    Column("target_key", String(512), nullable=False, index=True),
    Column("parameters", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("capture_start_time", DateTime(timezone=True)),
    Column("stop_reason", String(64)),
    Column("errors", Text, nullable=False, default="[]"),
    Column("error_message", Text),
    Column("summary", Text),
    Column("etag", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("storage_path", Text),
    Column("stop_requested", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agents = Table(
    "agents", metadata,
    Column("vm_key", String(512), primary_key=True),
    Column("vm_id", String(512), nullable=False),
    Column("version", String(32), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("running", Text, nullable=False, default="[]"),
)

alert_captures = Table(
    "alert_captures", metadata,
    Column("vm_key", String(512), primary_key=True),
    Column("rule_key", String(255), primary_key=True),
    Column("capture_id", String(512), nullable=False),
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass(frozen=True)
class CaptureRecord:
    capture: CaptureId
    parameters: PacketCaptureParameters
    status: PcStatus
    capture_start_time: datetime | None
    stop_reason: str | None
    errors: list[PcError]
    error_message: str | None
    summary: CaptureSummary | None
    etag: str
    run_id: str
    storage_path: str | None
    created_at: datetime

    def to_result(self) -> PacketCaptureResult:
        properties = PacketCaptureResultProperties(
            **self.parameters.model_dump(by_alias=False),
            provisioning_state=ProvisioningState.SUCCEEDED,
        )
        if self.storage_path:
            properties.storage_location = properties.storage_location.model_copy(
                update={"storage_path": self.storage_path})
        return PacketCaptureResult(name=self.capture.name, id=self.capture.arm_id, etag=self.etag,
                                   properties=properties)

    def to_status(self) -> PacketCaptureQueryStatusResult:
        return PacketCaptureQueryStatusResult(
            name=self.capture.name, id=self.capture.arm_id, capture_start_time=self.capture_start_time,
            packet_capture_status=self.status, stop_reason=self.stop_reason,
            packet_capture_error=self.errors, summary=self.summary, error_message=self.error_message,
        )


@dataclass(frozen=True)
class AgentRecord:
    vm_id: str
    version: str
    hostname: str
    last_seen: datetime
    running: list[str]


def _record(row) -> CaptureRecord:  # type: ignore[no-untyped-def]
    return CaptureRecord(
        capture=CaptureId.parse(row.arm_id),
        parameters=PacketCaptureParameters.model_validate_json(row.parameters),
        status=PcStatus(row.status),
        capture_start_time=_utc(row.capture_start_time),
        stop_reason=row.stop_reason,
        errors=[PcError(e) for e in json.loads(row.errors)],
        error_message=row.error_message,
        summary=CaptureSummary.model_validate_json(row.summary) if row.summary else None,
        etag=row.etag,
        run_id=row.run_id,
        storage_path=row.storage_path,
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
    )


def make_engine(database_url: str) -> Engine:
    is_sqlite = database_url.startswith("sqlite")
    folder = os.path.dirname(database_url.removeprefix("sqlite:///")) if is_sqlite else ""
    if folder:
        os.makedirs(folder, exist_ok=True)
    engine = create_engine(database_url, connect_args={"timeout": 30} if is_sqlite else {}, pool_size=16,
                           max_overflow=32, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_wal)
    metadata.create_all(engine)
    return engine


def _sqlite_wal(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """WAL lets readers go on while one process writes: no lock waits for the many readers."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, database_url: str) -> "Registry":
        return cls(make_engine(database_url))

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters, target_key: str,
               created_at: datetime) -> tuple[CaptureRecord, bool]:
        """Insert a NotStarted capture. Returns (record, created); an identical PUT of an
        existing capture returns it unchanged, a different one raises CaptureConflict."""
        values = dict(
            key=capture.key, arm_id=capture.arm_id, watcher_key=capture.watcher_path.lower(), name=capture.name,
            target_key=target_key, parameters=parameters.model_dump_json(by_alias=True),
            status=PcStatus.NOT_STARTED.value, errors="[]", etag=_etag(), run_id=uuid.uuid4().hex,
            stop_requested=0, created_at=created_at,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(captures).values(**values))
            return self.get(capture), True
        except IntegrityError:
            existing = self.get(capture)
            if existing.parameters == parameters:
                return existing, False
            raise CaptureConflict(capture.arm_id, "a packet capture with this name already exists "
                                  "with other properties; delete it first") from None

    def find(self, capture: CaptureId) -> CaptureRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(captures).where(captures.c.key == capture.key)).first()
        return _record(row) if row else None

    def get(self, capture: CaptureId) -> CaptureRecord:
        record = self.find(capture)
        if record is None:
            raise CaptureNotFound(capture.arm_id)
        return record

    def list(self, watcher_path: str) -> list[CaptureRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.watcher_key == watcher_path.lower())
                                .order_by(captures.c.created_at, captures.c.key)).all()
        return [_record(row) for row in rows]

    def apply(self, event: StatusEvent) -> bool:
        """Apply a status event if it moves this run of the capture forward; True when it did.
        An event of an earlier capture of the same name (deleted, then created again) is ignored."""
        predecessors = COMES_AFTER.get(event.status)
        if predecessors is None:
            return False
        values: dict[str, object] = dict(status=event.status.value, etag=_etag())
        if event.capture_start_time is not None:
            values["capture_start_time"] = _utc(event.capture_start_time)
        if event.stop_reason is not None:
            values["stop_reason"] = event.stop_reason
        if event.errors:
            values["errors"] = json.dumps([e.value for e in event.errors])
        if event.error_message is not None:
            values["error_message"] = event.error_message
        if event.summary is not None:
            values["summary"] = event.summary.model_dump_json(by_alias=True)
        key = CaptureId.parse(event.capture_id).key
        with self.engine.begin() as conn:
            result = conn.execute(
                update(captures)
                .where(captures.c.key == key, captures.c.run_id == event.run_id,
                       captures.c.status.in_([status.value for status in predecessors]))
                .values(**values)
            )
        return result.rowcount == 1

    def apply_upload(self, result: UploadResult) -> bool:
        """Record where a stopped capture's file was stored, or that storing it failed
        (Error with StorageFailed, the local path kept in the message). Applied once."""
        if result.storage_path is not None:
            values: dict[str, object] = dict(storage_path=result.storage_path, etag=_etag())
        else:
            values = dict(status=PcStatus.ERROR.value, errors=json.dumps([PcError.STORAGE_FAILED.value]),
                          error_message=f"{result.error_message}; the file is kept at {result.local_path}",
                          etag=_etag())
        key = CaptureId.parse(result.capture_id).key
        with self.engine.begin() as conn:
            updated = conn.execute(update(captures).where(
                captures.c.key == key, captures.c.run_id == result.run_id, captures.c.status == PcStatus.STOPPED.value,
                captures.c.storage_path.is_(None)).values(**values))
        return updated.rowcount == 1

    def delete(self, capture: CaptureId) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(captures).where(captures.c.key == capture.key)).rowcount == 1

    def record_heartbeat(self, beat: Heartbeat, received_at: datetime) -> None:
        """Liveness is judged by when the control plane heard the agent, on its own clock."""
        vm_key = beat.vm_id.lower()
        values = dict(vm_id=beat.vm_id, version=beat.version, hostname=beat.hostname,
                      last_seen=_utc(received_at), running=json.dumps(beat.running))
        with self.engine.begin() as conn:
            if conn.execute(update(agents).where(agents.c.vm_key == vm_key).values(**values)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(agents).values(vm_key=vm_key, **values))
                except IntegrityError:
                    conn.execute(update(agents).where(agents.c.vm_key == vm_key).values(**values))

    def running(self) -> list[CaptureRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.status == PcStatus.RUNNING.value)).all()
        return [_record(row) for row in rows]

    def request_stop(self, record: CaptureRecord) -> bool:
        """True for the first stop request of this run only: one stop, however many callers."""
        with self.engine.begin() as conn:
            return conn.execute(update(captures).where(
                captures.c.key == record.capture.key, captures.c.run_id == record.run_id,
                captures.c.stop_requested == 0).values(stop_requested=1)).rowcount == 1

    def clear_stop_request(self, record: CaptureRecord) -> None:
        """The stop could not be sent: let the next request try again."""
        with self.engine.begin() as conn:
            conn.execute(update(captures).where(captures.c.key == record.capture.key,
                                                captures.c.run_id == record.run_id).values(stop_requested=0))

    def list_agents(self) -> list[AgentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.vm_key)).all()
        return [AgentRecord(row.vm_id, row.version, row.hostname, _utc(row.last_seen),  # type: ignore[arg-type]
                            json.loads(row.running)) for row in rows]

    # -- alert-started captures: at most one per (VM, alert rule) -------------------------
    def alert_capture_status(self, vm_key: str, rule_key: str) -> tuple[CaptureId, PcStatus | None] | None:
        """The capture holding (VM, rule) and its status (None when it is gone), in one query."""
        query = (select(alert_captures.c.capture_id, captures.c.status)
                 .select_from(alert_captures.outerjoin(
                     captures, captures.c.key == func.lower(alert_captures.c.capture_id)))
                 .where(alert_captures.c.vm_key == vm_key, alert_captures.c.rule_key == rule_key))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return CaptureId.parse(row.capture_id), PcStatus(row.status) if row.status else None

    def claim_alert_capture(self, vm_key: str, rule_key: str, capture: CaptureId) -> CaptureId | None:
        """Claim (VM, rule) for `capture`: None when claimed, else the capture that holds it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(alert_captures).values(vm_key=vm_key, rule_key=rule_key,
                                                           capture_id=capture.arm_id))
            return None
        except IntegrityError:
            held = self.alert_capture_status(vm_key, rule_key)
            return held[0] if held is not None else self.claim_alert_capture(vm_key, rule_key, capture)

    def release_alert_capture(self, vm_key: str, rule_key: str, capture: CaptureId) -> None:
        """Release (VM, rule) if `capture` still holds it."""
        with self.engine.begin() as conn:
            conn.execute(delete(alert_captures).where(alert_captures.c.vm_key == vm_key,
                                                      alert_captures.c.rule_key == rule_key,
                                                      alert_captures.c.capture_id == capture.arm_id))
