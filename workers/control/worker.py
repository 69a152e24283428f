"""The control-plane worker: applies agents' status events, upload results and heartbeats
to the registry, publishes each capture's lifecycle events (shared/lifecycle_events.py)
and hands completion and failure events to the notifier.

Agents hold no database credentials; this worker is the only writer of their news.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import AzureError
from celery import Celery
from prometheus_client import Counter, Histogram

from shared.arm import PcError, PcStatus, format_arm_time
from shared.broker import (
    CONTROL_QUEUE, NOTIFY_QUEUE, Handler, agent_queue_name, bound_queue, make_celery, node_name, register_tasks,
    run_worker, send,
)
from shared.broker_identity import REPORTS_EXCHANGE
from shared.capture_files import file_uploaded, record_file
from shared.errors import InvalidField
from shared.lifecycle_events import ERROR, RUNNING, STORED, STOPPED, event_data, event_message, publish_event
from shared.messages import (
    SILENT_HEARTBEATS, FileClosed, Heartbeat, Notification, StatusEvent, TaskName, Tick, UploadResult,
)
from shared.pipelined_publish import PipelinedPublisher
from shared.probes import broker_state, database_state, serve_probes
from shared.registry import CaptureRecord, Registry
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.sealed_uploads import SealFailed, seal
from shared.storage_errors import is_transient
from shared.storage_accounts import StorageAccounts
from workers.control.file_uploads import FileUploads, blob_of
from workers.control.heartbeat_batch import HeartbeatBatch
from workers.control.senders import Senders

log = logging.getLogger("packetwatch.control")
# Messages each worker thread has in hand: with late acks a message is acknowledged once
# applied, so a worker that dies leaves them to be delivered again (each is idempotent).
PREFETCH = 64
COMPLETED = "com.packetwatch.capture.completed"
FAILED = "com.packetwatch.capture.failed"
ACTIVE_STATUSES = (PcStatus.NOT_STARTED, PcStatus.RUNNING)
MESSAGES = Counter("packetwatch_control_messages_total", "Messages the control worker took, by task", ["task"])
LAG = Histogram("packetwatch_control_lag_seconds", "From an agent's report to the control worker applying it",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
CAPTURE_EVENTS = Counter("packetwatch_capture_events_total", "Capture status changes applied, fleet-wide, by "
                         "status and reason (stop reason or error)", ["status", "reason"])
UPLOADS = Counter("packetwatch_uploads_total", "Upload results reported by agents, fleet-wide (stored, failed)",
                  ["result"])
RELAY_BATCH = 500  # messages per batch the relay publishes
RELAYED = Counter("packetwatch_outbox_relayed_total", "Requests the control worker sent for an API process that "
                  "recorded them but never saw them confirmed")
EXPIRED = Counter("packetwatch_captures_expired_total", "Captures ended as AgentStopped by the control worker, by "
                  "why (agent_silent, start_deadline)", ["why"])


LIFECYCLE = {PcStatus.RUNNING: RUNNING, PcStatus.STOPPED: STOPPED, PcStatus.ERROR: ERROR}


def notification(record: CaptureRecord, kind: str) -> Notification:
    return Notification(id=str(uuid.uuid4()), type=kind, subject=record.capture.arm_id,
                        time=datetime.now(timezone.utc), data=event_data(record))


class Control:
    def __init__(self, app: Celery, registry: Registry, heartbeat_seconds: float,
                 uploads: FileUploads | None = None) -> None:
        self.app = app
        self.registry = registry
        self.uploads = uploads or FileUploads(StorageAccounts(), timedelta(minutes=15))
        self.heartbeats = HeartbeatBatch(registry)
        self.relayer = PipelinedPublisher(app)  # the sweep thread's own connection
        self.interval = timedelta(seconds=heartbeat_seconds)
        self.last_tick: datetime | None = None
        self.ticks_since: datetime | None = None

    def tick(self, at: datetime) -> None:
        """A tick of our own came back through the broker: the path agents report on works."""
        if self.last_tick is None or at - self.last_tick > 2 * self.interval:
            self.ticks_since = at
        self.last_tick = at

    def hears_agents(self, now: datetime, silent_after: timedelta) -> bool:
        """Only judge an agent silent when the broker has carried our ticks for a while:
        during a broker outage every agent is silent, and none of them is dead."""
        return (self.last_tick is not None and self.ticks_since is not None
                and now - self.last_tick <= 2 * self.interval and now - self.ticks_since > silent_after)

    def announce(self, capture_id: str, kind: str) -> None:
        """Publish the capture's lifecycle event of `kind` (running, stopped, error, stored) and
        hand an ended capture, as it now stands, to the notifier."""
        record = self.registry.find(CaptureId.parse(capture_id))
        if record is None:
            return
        publish_event(self.app, event_message(kind, record))
        if kind == RUNNING or (kind == STOPPED and record.parameters.storage_location.storage_id
                               and not record.storage_path):
            return  # completed once its upload is verified (see uploaded)
        send(self.app, notification(record, FAILED if kind == ERROR else COMPLETED), NOTIFY_QUEUE)

    def heartbeat(self, beat: Heartbeat) -> None:
        now = datetime.now(timezone.utc)
        LAG.observe(max(0.0, (now - beat.reported_at).total_seconds()))
        self.heartbeats.add(beat, now)
        log.debug("heartbeat from %s (%d running)", beat.vm_id, len(beat.running))

    def status(self, event: StatusEvent) -> None:
        LAG.observe(max(0.0, (datetime.now(timezone.utc) - event.reported_at).total_seconds()))
        applied = self.registry.apply(event)
        reason = event.stop_reason or ",".join(error.value for error in event.errors) or ""
        where = {"capture_id": event.capture_id, "run_id": event.run_id}
        if not applied:
            log.debug("capture %s: %s from run %s ignored (stale)", event.capture_id, event.status.value,
                      event.run_id, extra=where)
            return
        CAPTURE_EVENTS.labels(event.status.value, reason).inc()
        log.info("capture %s is %s%s", event.capture_id, event.status.value, f" ({reason})" if reason else "",
                 extra=where)
        if event.status in LIFECYCLE:
            self.announce(event.capture_id, LIFECYCLE[event.status])

    def sweep(self, silent_after: timedelta) -> None:
        """Running captures whose agent has gone silent end as Error/AgentStopped."""
        now = datetime.now(timezone.utc)
        if not self.hears_agents(now, silent_after):
            return
        last_seen = {agent.vm_id.lower(): agent.last_seen for agent in self.registry.list_agents()}
        for record in self.registry.running():
            seen = last_seen.get(record.parameters.target.lower(), record.capture_start_time)
            if seen is not None and now - seen > silent_after:
                event = StatusEvent(capture_id=record.capture.arm_id, run_id=record.run_id, status=PcStatus.ERROR,
                                    reported_at=now, errors=[PcError.AGENT_STOPPED],
                                    error_message=f"the agent of {record.parameters.target} has been silent "
                                                  f"since {seen.isoformat()}")
                if self.registry.apply(event):
                    EXPIRED.labels("agent_silent").inc()
                    log.warning("capture %s: agent silent, marked AgentStopped", record.capture.arm_id,
                                extra={"capture_id": record.capture.arm_id, "run_id": record.run_id})
                    self.announce(record.capture.arm_id, ERROR)

    def expire_unstarted(self, start_deadline: timedelta) -> None:
        """Captures no agent started by their deadline end as Error/AgentStopped, saying when
        their VM's agent was last heard; their request, if still unsent, is dropped. Only
        judged while the broker carries our ticks (an outage holds every request back)."""
        now = datetime.now(timezone.utc)
        if not self.hears_agents(now, 2 * self.interval):
            return
        for record in self.registry.not_started_before(now - start_deadline - 2 * self.interval):
            vm = record.parameters.target
            agent = self.registry.agent(vm)
            seen = (f"its agent was last seen at {format_arm_time(agent.last_seen)}" if agent
                    else "no agent has ever reported for this VM")
            event = StatusEvent(capture_id=record.capture.arm_id, run_id=record.run_id, status=PcStatus.ERROR,
                                reported_at=now, errors=[PcError.AGENT_STOPPED],
                                error_message=f"no agent started this capture on {vm} within "
                                              f"{start_deadline.total_seconds():.0f} s; {seen}")
            if self.registry.apply(event):
                self.registry.cancel_request(record)
                EXPIRED.labels("start_deadline").inc()
                log.warning("capture %s: not started by its deadline, marked AgentStopped", record.capture.arm_id,
                            extra={"capture_id": record.capture.arm_id, "run_id": record.run_id})
                self.announce(record.capture.arm_id, ERROR)

    def relay(self) -> int:
        """Send what API processes recorded but never saw confirmed (one died, or the broker
        failed it), in batches with one wait for the broker's confirms each; what is confirmed
        leaves the outbox, the rest is sent again once the lease this relay took runs out."""
        relayed = 0
        while pending := self.registry.take_abandoned(RELAY_BATCH):
            published = self.relayer.publish([message.message for message in pending])
            sent = [message for message, confirmed in zip(pending, published.confirmed) if confirmed]
            self.registry.messages_sent(sent)
            RELAYED.inc(len(sent))
            relayed += len(sent)
            for message in sent:
                log.info("relayed %s for %s", message.message.task.value, message.capture_key)
            if len(sent) < len(pending):
                log.warning("relay: %d of %d message(s) not confirmed (%s); sent again when their lease runs out",
                            len(pending) - len(sent), len(pending), published.failure)
                break
        return relayed

    def file_closed(self, event: FileClosed) -> None:
        """Record a continuous capture's file; with a storage account, send its upload."""
        where = {"capture_id": event.capture_id, "run_id": event.run_id}
        if not record_file(self.registry.engine, event):
            return  # delivered again
        log.info("capture %s: file %d closed, %d packets, %d bytes", event.capture_id, event.index, event.packets,
                 event.bytes, extra=where)
        record = self.registry.find(CaptureId.parse(event.capture_id))
        if record is None or not record.parameters.storage_location.storage_id:
            return
        try:
            request = self.uploads.request_for(record, event)
        except (InvalidField, AzureError) as exc:
            file_uploaded(self.registry.engine, UploadResult(capture_id=event.capture_id, run_id=event.run_id,
                                                             error_message=str(exc), local_path=event.local_path,
                                                             file_index=event.index))
            log.error("capture %s: file %d cannot be uploaded: %s", event.capture_id, event.index, exc, extra=where)
            return
        send(self.app, request, agent_queue_name(VirtualMachineId.parse(record.parameters.target)))

    def uploaded(self, result: UploadResult) -> bool:
        """Apply an upload's result, its staging blob sealed into the capture's first; False
        while the copy runs or the capture's Stopped event is not applied yet (the agent sends
        it first, but another thread of this worker may still hold it): the caller tries
        again shortly."""
        if result.storage_path:
            sealed = self._sealed(result)
            if sealed is None:
                return False
            result = sealed
        if result.file_index is not None:
            UPLOADS.labels("stored" if result.storage_path else "failed").inc()
            file_uploaded(self.registry.engine, result)
            return True
        if self.registry.apply_upload(result):
            UPLOADS.labels("stored" if result.storage_path else "failed").inc()
            self.announce(result.capture_id, STORED if result.storage_path else ERROR)
            return True
        record = self.registry.find(CaptureId.parse(result.capture_id))
        return not (record is not None and record.run_id == result.run_id and record.status in ACTIVE_STATUSES)

    def _sealed(self, result: UploadResult) -> UploadResult | None:
        """The result with the capture's own blob (the staging blob copied to it), None while
        the copy runs; a copy that cannot be made turns it into a failed upload."""
        record = self.registry.find(CaptureId.parse(result.capture_id))
        storage_id = record.parameters.storage_location.storage_id if record is not None else None
        if record is None or not storage_id or not result.storage_path:
            return result
        try:
            url = seal(self.uploads.accounts.lookup(storage_id, "storageLocation.storageId"),
                       *blob_of(record, result.file_index), result.storage_path)
        except (InvalidField, SealFailed, AzureError) as exc:
            if isinstance(exc, AzureError) and is_transient(exc):
                log.warning("capture %s: its upload not sealed yet, trying again: %s", result.capture_id,
                            str(exc).splitlines()[0], extra={"capture_id": result.capture_id, "run_id": result.run_id})
                return None
            log.error("capture %s: its upload could not be sealed: %s", result.capture_id, exc,
                      extra={"capture_id": result.capture_id, "run_id": result.run_id})
            return result.model_copy(update={"storage_path": None, "error_message": f"the upload to "
                                             f"{result.storage_path} could not be sealed: {exc}"})
        return None if url is None else result.model_copy(update={"storage_path": url})


def build_control_app(broker_url: str, registry: Registry, heartbeat_seconds: float,
                      uploads: FileUploads | None = None) -> tuple[Celery, Control]:
    app = make_celery("packetwatch-control", broker_url)
    # Its queue, bound to the exchange agents report through (declared here as well as at enrollment).
    app.conf.task_queues = [bound_queue(CONTROL_QUEUE, REPORTS_EXCHANGE, "direct")]
    app.conf.worker_prefetch_multiplier = PREFETCH
    control = Control(app, registry, heartbeat_seconds, uploads)
    senders = Senders(registry, broker_url)

    # Each report is applied only when its sender, as the broker vouches for it, is the agent
    # of the capture's VM (or, for a heartbeat, of the VM it speaks for); ticks only from here.
    register_tasks(app, [
        Handler(TaskName.TICK, lambda _: control.tick(datetime.now(timezone.utc)), may_send=senders.ourselves),
        Handler(TaskName.STATUS, control.status, may_send=senders.capture_agent),
        Handler(TaskName.UPLOADED, control.uploaded, until_applied=True, may_send=senders.capture_agent),
        # A run's statistics wait for its Stopped, which may still be in another worker's hands.
        Handler(TaskName.STATISTICS, registry.apply_statistics, until_applied=True, may_send=senders.capture_agent),
        Handler(TaskName.FILE_CLOSED, control.file_closed, may_send=senders.capture_agent),
        # No task events for heartbeats: nine in ten of the messages at fleet size, and three
        # more messages each; the metrics count them (packetwatch_control_messages_total{task=…}).
        Handler(TaskName.HEARTBEAT, control.heartbeat, events=False, may_send=senders.vm_agent),
    ], count=lambda task: MESSAGES.labels(task.value).inc())
    return app, control


def _sweep_forever(control: Control, heartbeat_seconds: float, start_deadline: timedelta) -> None:
    silent_after = timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)
    while True:
        time.sleep(heartbeat_seconds)
        try:
            send(control.app, Tick(), CONTROL_QUEUE)
            control.relay()
            control.sweep(silent_after)
            control.expire_unstarted(start_deadline)
        except Exception:
            log.warning("tick or sweep failed; trying again", exc_info=True)


def run_control(broker_url: str, database_url: str, heartbeat_seconds: float, start_deadline_seconds: float,
                probes: tuple[str, int], uploads: FileUploads, concurrency: int = 1) -> None:
    """Apply agents' news until shut down, serving /metrics, /healthz, /readyz on `probes` (host, port)."""
    registry = Registry.from_url(database_url)
    app, control = build_control_app(broker_url, registry, heartbeat_seconds, uploads)
    serve_probes(*probes, lambda: {"database": database_state(registry.engine), "broker": broker_state(broker_url)})
    threading.Thread(target=control.heartbeats.run_forever, name="heartbeats", daemon=True).start()
    threading.Thread(target=_sweep_forever, name="sweep", daemon=True,
                     args=(control, heartbeat_seconds, timedelta(seconds=start_deadline_seconds))).start()
    run_worker(app, CONTROL_QUEUE, node_name("control"), concurrency)
