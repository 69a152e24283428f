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

from sqlalchemy import create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.arm import (
    CaptureSummary, PacketCaptureParameters, PacketCaptureQueryStatusResult, PacketCaptureResult,
    PacketCaptureResultProperties, PcError, PcStatus, ProvisioningState, StopReason,
)
from shared.errors import CaptureConflict, CaptureNotFound
from shared import outbox
from shared.messages import Heartbeat, Outgoing, StatusEvent, TaskName, UploadResult
from shared.outbox import PendingMessage
from shared.registry_migrations import prepare
from shared.registry_schema import agents, alert_captures, capture_files, captures
from shared.resource_ids import CaptureId

# The statuses each status may follow: status only moves forward.
COMES_AFTER = {
    PcStatus.RUNNING: (PcStatus.NOT_STARTED,),
    PcStatus.STOPPED: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
    PcStatus.ERROR: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
}

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
class AlertClaim:
    """At most one capture per (VM, alert rule) at a time."""

    vm_key: str
    rule_key: str


@dataclass(frozen=True)
class Created:
    record: CaptureRecord | None
    created: bool
    pending: list[PendingMessage]
    holder: CaptureId | None = None


@dataclass(frozen=True)
class AgentRecord:
    vm_id: str
    version: str
    hostname: str
    last_seen: datetime
    running: list[str]
    interface: str | None = None


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


def _agent(row) -> AgentRecord:  # type: ignore[no-untyped-def]
    return AgentRecord(row.vm_id, row.version, row.hostname, _utc(row.last_seen),  # type: ignore[arg-type]
                       json.loads(row.running), row.interface)


def make_engine(database_url: str) -> Engine:
    is_sqlite = database_url.startswith("sqlite")
    folder = os.path.dirname(database_url.removeprefix("sqlite:///")) if is_sqlite else ""
    if folder:
        os.makedirs(folder, exist_ok=True)
    engine = create_engine(database_url, connect_args={"timeout": 30} if is_sqlite else {}, pool_size=16,
                           max_overflow=32, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_wal)
    prepare(engine, engine.url.render_as_string(hide_password=True))
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
               created_at: datetime, run_id: str, request: Outgoing, claim: AlertClaim | None = None) -> Created:
        """Insert a NotStarted capture and its capture request (the outbox) in one transaction,
        with the alert claim when there is one. An identical PUT of an existing capture gets it
        unchanged with its still unsent messages; a different one raises CaptureConflict; a
        claim held by another capture gets that capture as `holder`."""
        values = dict(
            key=capture.key, arm_id=capture.arm_id, watcher_key=capture.watcher_path.lower(), name=capture.name,
            target_key=target_key, parameters=parameters.model_dump_json(by_alias=True),
            status=PcStatus.NOT_STARTED.value, errors="[]", etag=_etag(), run_id=run_id,
            stop_requested=0, created_at=created_at,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(captures).values(**values))
                pending = outbox.add(conn, capture.key, run_id, request, created_at)
                if claim is not None:
                    conn.execute(insert(alert_captures).values(vm_key=claim.vm_key, rule_key=claim.rule_key,
                                                               capture_id=capture.arm_id))
            return Created(self.get(capture), True, [pending])
        except IntegrityError:
            if claim is not None:
                held = self.alert_capture_status(claim.vm_key, claim.rule_key)
                if held is None:
                    return self.create(capture, parameters, target_key, created_at, run_id, request, claim)
                if held[0] != capture:
                    return Created(None, False, [], holder=held[0])
            existing = self.get(capture)
            if existing.parameters != parameters:
                raise CaptureConflict(capture.arm_id, "a packet capture with this name already exists "
                                      "with other properties; delete it first") from None
            return Created(existing, False, self.take_unsent(capture))

    # -- the outbox ---------------------------------------------------------------------
    def take_unsent(self, capture: CaptureId) -> list[PendingMessage]:
        """The capture's unconfirmed messages that no sender holds now, leased to the caller.
        Looked for with a read first: nearly always there are none, and then nothing is written."""
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:
            left = outbox.for_capture(conn, capture.key, lease_ended_by=now)
        if not left:
            return []
        with self.engine.begin() as conn:
            return outbox.lease(conn, left, now)

    def take_abandoned(self, limit: int = 500) -> list[PendingMessage]:
        """Unconfirmed messages whose sender's lease ran out (it died), leased to the caller."""
        with self.engine.begin() as conn:
            return outbox.lease_expired(conn, datetime.now(timezone.utc), limit)

    def message_sent(self, message: PendingMessage) -> None:
        with self.engine.begin() as conn:
            outbox.remove(conn, message.id)

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
        """Remove the capture and its unsent capture request (an unsent stop still goes out)."""
        with self.engine.begin() as conn:
            outbox.cancel(conn, capture.key, TaskName.CAPTURE)
            conn.execute(delete(capture_files).where(capture_files.c.capture_key == capture.key))
            return conn.execute(delete(captures).where(captures.c.key == capture.key)).rowcount == 1

    def record_heartbeat(self, beat: Heartbeat, received_at: datetime) -> None:
        """Liveness is judged by when the control plane heard the agent, on its own clock."""
        vm_key = beat.vm_id.lower()
        values = dict(vm_id=beat.vm_id, version=beat.version, hostname=beat.hostname, interface=beat.interface,
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

    def request_stop(self, record: CaptureRecord, stop: Outgoing, at: datetime) -> list[PendingMessage]:
        """Claim the stop of this run (one stop, however many callers) and record its message;
        a capture no agent has started yet is Stopped at once and its unsent request dropped.
        Returns the stop messages for the caller to send: this one, or an earlier one never
        confirmed whose sender is gone."""
        key = record.capture.key
        with self.engine.begin() as conn:
            claimed = conn.execute(update(captures).where(
                captures.c.key == key, captures.c.run_id == record.run_id,
                captures.c.stop_requested == 0).values(stop_requested=1)).rowcount == 1
            if claimed:
                sent_now = outbox.add(conn, key, record.run_id, stop, at)
                stopped = conn.execute(update(captures).where(
                    captures.c.key == key, captures.c.run_id == record.run_id,
                    captures.c.status == PcStatus.NOT_STARTED.value).values(
                    status=PcStatus.STOPPED.value, stop_reason=StopReason.MANUALLY_STOPPED.value,
                    etag=_etag())).rowcount
                if stopped:
                    outbox.cancel(conn, key, TaskName.CAPTURE, record.run_id)
                return [sent_now]
            return outbox.lease(conn, outbox.for_capture(conn, key, record.run_id, TaskName.STOP), at)

    def not_started_before(self, cutoff: datetime) -> list[CaptureRecord]:
        """Captures no agent has started, created before `cutoff`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.status == PcStatus.NOT_STARTED.value,
                                                       captures.c.created_at < cutoff)).all()
        return [_record(row) for row in rows]

    def cancel_request(self, record: CaptureRecord) -> None:
        """Drop this run's capture request if it was never sent (it can no longer start)."""
        with self.engine.begin() as conn:
            outbox.cancel(conn, record.capture.key, TaskName.CAPTURE, record.run_id)

    def agent(self, vm_key: str) -> AgentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(agents).where(agents.c.vm_key == vm_key.lower())).first()
        return _agent(row) if row else None

    def list_agents(self) -> list[AgentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.vm_key)).all()
        return [_agent(row) for row in rows]

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

    def release_alert_capture(self, vm_key: str, rule_key: str, capture: CaptureId) -> None:
        """Release (VM, rule) if `capture` still holds it."""
        with self.engine.begin() as conn:
            conn.execute(delete(alert_captures).where(alert_captures.c.vm_key == vm_key,
                                                      alert_captures.c.rule_key == rule_key,
                                                      alert_captures.c.capture_id == capture.arm_id))
