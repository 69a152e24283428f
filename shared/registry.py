"""The capture registry: what captures exist and what state each is in (SQLAlchemy;
SQLite by default, PostgreSQL when configured).

Status only moves forward: NotStarted → Running → Stopped | Error. Each event is applied
with a conditional UPDATE, so a duplicate or late one changes nothing, even with several
writers at once.
"""

from __future__ import annotations

from typing import Any
from sqlalchemy import Connection, text
import json
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.arm import CaptureSummary, PacketCaptureParameters, PcError, PcStatus, StopReason
from shared.errors import CaptureConflict, CaptureNotFound
from shared import outbox
from shared.messages import CaptureStatistics, Heartbeat, Outgoing, StatusEvent, TaskName, UploadResult
from shared.outbox import PendingMessage
from shared.registry_migrations import prepare
from shared.registry_records import (  # noqa: F401 (AlertClaim, Created, InstancePart: the registry's API)
    AgentRecord, AlertClaim, CaptureRecord, Created, InstancePart, agent_of, as_utc, listed_properties, new_etag,
    new_record, record_of, row_values,
)
from shared.registry_schema import agents, alert_captures, capture_files, captures
from shared.resource_ids import CaptureId, ScaleSetId
from shared.scale_sets import combined_status

# The statuses each status may follow: status only moves forward.
COMES_AFTER = {
    PcStatus.RUNNING: (PcStatus.NOT_STARTED,),
    PcStatus.STOPPED: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
    PcStatus.ERROR: (PcStatus.NOT_STARTED, PcStatus.RUNNING),
}

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


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:  # a DB-API connection, as the event gives it
    """WAL lets readers go on while one process writes: no lock waits for the many readers."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Built once, as every alert asks them (making a statement costs more than running it).
AGENT = select(agents).where(agents.c.vm_key == bindparam("vm_key"))
ALERT_HOLDER = (select(alert_captures.c.capture_id, captures.c.status)
                .select_from(alert_captures.outerjoin(captures, captures.c.key == func.lower(alert_captures.c.capture_id)))
                .where(alert_captures.c.vm_key == bindparam("vm_key"), alert_captures.c.rule_key == bindparam("rule_key")))


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def scale_set_agents(self, scale_set: ScaleSetId) -> list[AgentRecord]:
        """The agents of a scale set's instances that have reported, by instance."""
        prefix = scale_set.key + "/virtualmachines/"
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).where(agents.c.vm_key.startswith(prefix, autoescape=True))
                                .order_by(agents.c.vm_key)).all()
        return [agent_of(row) for row in rows]

    @classmethod
    def from_url(cls, database_url: str) -> "Registry":
        return cls(make_engine(database_url))

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters, target_key: str,
               created_at: datetime, run_id: str, request: Outgoing | None, claim: AlertClaim | None = None,
               instances: list[InstancePart] | None = None, planned_path: str | None = None) -> Created:
        """Insert a NotStarted capture and its capture request (the outbox) in one transaction,
        with the alert claim when there is one; a scale set capture with the part of each
        instance in scope instead (its own status is theirs: Unknown here). An identical PUT
        of an existing capture gets it unchanged with its still unsent messages; a different
        one raises CaptureConflict; a claim held by another capture gets that capture as `holder`.
        `planned_path` is the blob URL its file will have, shown by GET list."""
        values = row_values(capture, parameters, target_key, run_id, created_at, capture.watcher_path.lower(),
                            PcStatus.UNKNOWN if instances else PcStatus.NOT_STARTED, planned_path)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(captures), values)
                pending = [outbox.add(conn, capture.key, run_id, request, created_at)] if request else []
                if instances:
                    conn.execute(insert(captures), [
                        row_values(part.capture, part.parameters, part.target_key, part.run_id, created_at, capture.key,
                                   PcStatus.NOT_STARTED) for part in instances])
                    pending += [outbox.add(conn, part.capture.key, part.run_id, part.request, created_at)
                                for part in instances]
                if claim is not None:
                    conn.execute(insert(alert_captures), {"vm_key": claim.vm_key, "rule_key": claim.rule_key,
                                                          "capture_id": capture.arm_id})
            return Created(new_record(values), True, pending)
        except IntegrityError:
            if claim is not None:
                held = self.alert_capture_status(claim.vm_key, claim.rule_key)
                if held is None:
                    return self.create(capture, parameters, target_key, created_at, run_id, request, claim,
                                       instances, planned_path)
                if held[0] != capture:
                    return Created(None, False, [], holder=held[0])
            existing = self.get(capture)
            if existing.parameters != parameters:
                raise CaptureConflict(capture.arm_id, "a packet capture with this name already exists "
                                      "with other properties; delete it first") from None
            return Created(existing, False, self.take_unsent(capture))

    def instances(self, capture: CaptureId) -> list[CaptureRecord]:
        """The instances' parts of a scale set capture (none for a VM capture)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.watcher_key == capture.key)
                                .order_by(captures.c.key)).all()
        return [record_of(row) for row in rows]

    def _keys(self, conn: Connection, capture: CaptureId) -> list[str]:
        """The capture's key and its instances' keys."""
        return [capture.key, *conn.execute(select(captures.c.key).where(captures.c.watcher_key == capture.key))
                .scalars()]

    # -- the outbox ---------------------------------------------------------------------
    def take_unsent(self, capture: CaptureId) -> list[PendingMessage]:
        """The capture's unconfirmed messages that no sender holds now, leased to the caller.
        Looked for with a read first: nearly always there are none, and then nothing is written."""
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:
            left = outbox.abandoned_of(conn, capture.key, now)
        if not left:
            return []
        with self.engine.begin() as conn:
            return outbox.lease(conn, left, now)

    def take_abandoned(self, limit: int = 500) -> list[PendingMessage]:
        """Unconfirmed messages whose sender's lease ran out (it died), leased to the caller."""
        with self.engine.begin() as conn:
            return outbox.lease_expired(conn, datetime.now(timezone.utc), limit)

    def messages_sent(self, messages: list[PendingMessage]) -> None:
        """Take confirmed messages out of the outbox, in one transaction."""
        if not messages:
            return
        with self.engine.begin() as conn:
            for message in messages:
                outbox.remove(conn, message.id)

    def find(self, capture: CaptureId) -> CaptureRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(captures).where(captures.c.key == capture.key)).first()
        return record_of(row) if row else None

    def get(self, capture: CaptureId) -> CaptureRecord:
        record = self.find(capture)
        if record is None:
            raise CaptureNotFound(capture.arm_id)
        return record

    def import_captures(self, entries: list[tuple[CaptureId, PacketCaptureParameters, datetime, PcStatus]],
                        planned_path: Callable[[PacketCaptureParameters, datetime], str | None] = lambda *_: None,
                        chunk: int = 5000) -> int:
        """The bulk path for registry set-up (benchmarks, imports): captures recorded as they
        stand, a chunk per transaction, no capture request sent; `planned_path` gives each
        one's blob URL as create would. Returns how many."""
        for start in range(0, len(entries), chunk):
            with self.engine.begin() as conn:
                conn.execute(insert(captures), [
                    row_values(capture, parameters, parameters.target.lower(), uuid.uuid4().hex, created_at,
                               capture.watcher_path.lower(), status, planned_path(parameters, created_at))
                    for capture, parameters, created_at, status in entries[start:start + chunk]])
        if self.engine.dialect.name == "postgresql":  # a bulk load leaves the planner's statistics stale
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE packet_captures"))
        return len(entries)

    def in_watcher(self, watcher_path: str) -> list[CaptureRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.watcher_key == watcher_path.lower())
                                .order_by(captures.c.created_at, captures.c.key)).all()
        return [record_of(row) for row in rows]

    def apply(self, event: StatusEvent) -> bool:
        """Apply a status event if it moves this run of the capture forward; True when it did.
        An event of an earlier capture of the same name (deleted, then created again) is ignored."""
        predecessors = COMES_AFTER.get(event.status)
        if predecessors is None:
            return False
        values: dict[str, object] = dict(status=event.status.value, etag=new_etag())
        if event.capture_start_time is not None:
            values["capture_start_time"] = as_utc(event.capture_start_time)
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
        key = CaptureId.parse(result.capture_id).key
        with self.engine.begin() as conn:
            if result.storage_path is not None:
                stored = conn.execute(select(captures.c.parameters).where(captures.c.key == key)).scalar()
                listed = listed_properties(PacketCaptureParameters.model_validate_json(stored),
                                           result.storage_path) if stored is not None else None
                values: dict[str, object] = dict(storage_path=result.storage_path, listed=listed, etag=new_etag())
            else:
                values = _storage_failed(f"{result.error_message}; the file is kept at {result.local_path}")
            updated = conn.execute(update(captures).where(
                captures.c.key == key, captures.c.run_id == result.run_id, captures.c.status == PcStatus.STOPPED.value,
                captures.c.storage_path.is_(None)).values(**values))
        return updated.rowcount == 1

    def stored_blob_lost(self, capture_key: str, run_id: str, stored_at: str, message: str) -> bool:
        """The storage service no longer has the blob this run was stored at: the capture is
        Error/StorageFailed with `message`, and no longer says it is stored."""
        with self.engine.begin() as conn:
            updated = conn.execute(update(captures).where(
                captures.c.key == capture_key, captures.c.run_id == run_id, captures.c.storage_path == stored_at,
            ).values(storage_path=None, **_storage_failed(message)))
        return updated.rowcount == 1

    def apply_statistics(self, report: CaptureStatistics) -> bool:
        """Add what a finished run's files hold to its summary. False while that run's end is
        not applied yet (the caller tries again shortly); a report of another run (the capture
        was deleted and made again) changes nothing."""
        key = CaptureId.parse(report.capture_id).key
        with self.engine.begin() as conn:
            row = conn.execute(select(captures.c.run_id, captures.c.status, captures.c.summary)
                               .where(captures.c.key == key)).first()
            if row is None or row.run_id != report.run_id:
                return True
            if row.status in (PcStatus.NOT_STARTED.value, PcStatus.RUNNING.value):
                return False
            summary = CaptureSummary.model_validate_json(row.summary) if row.summary else CaptureSummary()
            summary = summary.model_copy(update={"protocols": report.protocols, "top_talkers": report.top_talkers,
                                                 "sha256": report.sha256 or summary.sha256})
            conn.execute(update(captures).where(captures.c.key == key, captures.c.run_id == report.run_id)
                         .values(summary=summary.model_dump_json(by_alias=True)))
        return True

    def delete(self, capture: CaptureId) -> bool:
        """Remove the capture (and a scale set capture's instance parts) and the unsent capture
        requests (an unsent stop still goes out)."""
        with self.engine.begin() as conn:
            keys = self._keys(conn, capture)
            for key in keys:
                outbox.cancel(conn, key, TaskName.CAPTURE)
            conn.execute(delete(capture_files).where(capture_files.c.capture_key.in_(keys)))
            conn.execute(delete(captures).where(captures.c.watcher_key == capture.key))
            return conn.execute(delete(captures).where(captures.c.key == capture.key)).rowcount == 1

    def record_heartbeat(self, beat: Heartbeat, received_at: datetime) -> None:
        self.record_heartbeats([(beat, received_at)])

    def record_heartbeats(self, beats: list[tuple[Heartbeat, datetime]]) -> None:
        """Liveness is judged by when the control plane heard the agent, on its own clock. Many
        beats go in one transaction, an upsert per agent (the latest beat of each)."""
        latest = {beat.vm_id.lower(): (beat, received_at) for beat, received_at in beats}
        rows = [dict(vm_key=vm_key, vm_id=beat.vm_id, version=beat.version, hostname=beat.hostname,
                     interface=beat.interface, last_seen=as_utc(received_at), running=json.dumps(beat.running),
                     location=beat.location,
                     progress=json.dumps({run: p.model_dump() for run, p in beat.progress.items()}))
                for vm_key, (beat, received_at) in latest.items()]
        if not rows:
            return
        upsert = (sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert)(agents)
        upsert = upsert.on_conflict_do_update(index_elements=[agents.c.vm_key], set_={
            name: upsert.excluded[name] for name in rows[0] if name != "vm_key"})
        with self.engine.begin() as conn:
            conn.execute(upsert, rows)

    def running(self) -> list[CaptureRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.status == PcStatus.RUNNING.value)).all()
        return [record_of(row) for row in rows]

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
                    etag=new_etag())).rowcount
                if stopped:
                    outbox.cancel(conn, key, TaskName.CAPTURE, record.run_id)
                return [sent_now]
            return outbox.lease(conn, outbox.for_capture(conn, key, record.run_id, TaskName.STOP), at)

    def not_started_before(self, cutoff: datetime) -> list[CaptureRecord]:
        """Captures no agent has started, created before `cutoff`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(captures).where(captures.c.status == PcStatus.NOT_STARTED.value,
                                                       captures.c.created_at < cutoff)).all()
        return [record_of(row) for row in rows]

    def cancel_request(self, record: CaptureRecord) -> None:
        """Drop this run's capture request if it was never sent (it can no longer start)."""
        with self.engine.begin() as conn:
            outbox.cancel(conn, record.capture.key, TaskName.CAPTURE, record.run_id)

    def agent(self, vm_key: str) -> AgentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(AGENT, {"vm_key": vm_key.lower()}).first()
        return agent_of(row) if row else None

    def list_agents(self) -> list[AgentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.vm_key)).all()
        return [agent_of(row) for row in rows]

    # -- alert-started captures: at most one per (VM, alert rule) -------------------------
    def alert_capture_status(self, vm_key: str, rule_key: str) -> tuple[CaptureId, PcStatus | None] | None:
        """The capture holding (VM, rule) and its status (None when it is gone), in one query."""
        with self.engine.connect() as conn:
            row = conn.execute(ALERT_HOLDER, {"vm_key": vm_key, "rule_key": rule_key}).first()
        if row is None:
            return None
        capture = CaptureId.parse(row.capture_id)
        if row.status == PcStatus.UNKNOWN.value:  # a scale set capture: its instances' status
            return capture, combined_status([part.status for part in self.instances(capture)])
        return capture, PcStatus(row.status) if row.status else None

    def release_alert_capture(self, vm_key: str, rule_key: str, capture: CaptureId) -> None:
        """Release (VM, rule) if `capture` still holds it."""
        with self.engine.begin() as conn:
            conn.execute(delete(alert_captures).where(alert_captures.c.vm_key == vm_key,
                                                      alert_captures.c.rule_key == rule_key,
                                                      alert_captures.c.capture_id == capture.arm_id))


def _storage_failed(message: str) -> dict[str, object]:
    """A capture's row once its file could not be (or is no longer) stored."""
    return dict(status=PcStatus.ERROR.value, errors=json.dumps([PcError.STORAGE_FAILED.value]),
                error_message=message, etag=new_etag())
