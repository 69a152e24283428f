"""The control-plane worker: applies agents' status events, upload results and heartbeats
to the registry, and hands completion and failure events to the notifier.

Agents hold no database credentials; this worker is the only writer of their news.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from celery import Celery
from prometheus_client import Counter, Histogram

from shared.arm import PcError, PcStatus, format_arm_time
from shared.broker import CONTROL_QUEUE, NOTIFY_QUEUE, durable_queue, make_celery, publish, run_worker
from shared.messages import SILENT_HEARTBEATS, Heartbeat, Notification, StatusEvent, TaskName, UploadResult
from shared.probes import broker_state, database_state, serve_probes
from shared.registry import CaptureRecord, Registry
from shared.resource_ids import CaptureId

log = logging.getLogger("packetwatch.control")
COMPLETED = "com.packetwatch.capture.completed"
FAILED = "com.packetwatch.capture.failed"
MESSAGES = Counter("packetwatch_control_messages_total", "Messages the control worker took, by task", ["task"])
LAG = Histogram("packetwatch_control_lag_seconds", "From an agent's report to the control worker applying it",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
CAPTURE_EVENTS = Counter("packetwatch_capture_events_total", "Capture status changes applied, fleet-wide, by "
                         "status and reason (stop reason or error)", ["status", "reason"])
UPLOADS = Counter("packetwatch_uploads_total", "Upload results reported by agents, fleet-wide (stored, failed)",
                  ["result"])
RELAYED = Counter("packetwatch_outbox_relayed_total", "Requests the control worker sent for an API process that "
                  "recorded them but never saw them confirmed")
EXPIRED = Counter("packetwatch_captures_expired_total", "Captures ended as AgentStopped by the control worker, by "
                  "why (agent_silent, start_deadline)", ["why"])


def notification(record: CaptureRecord, kind: str) -> Notification:
    status = record.to_status().to_arm()
    data = {**status, "target": record.parameters.target, "storagePath": record.storage_path}
    return Notification(id=str(uuid.uuid4()), type=kind, subject=record.capture.arm_id,
                        time=datetime.now(timezone.utc), data=data)


class Control:
    def __init__(self, app: Celery, registry: Registry, heartbeat_seconds: float) -> None:
        self.app = app
        self.registry = registry
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

    def notify(self, capture_id: str, kind: str) -> None:
        """Hand the capture as it now stands to the notifier."""
        record = self.registry.find(CaptureId.parse(capture_id))
        if record is None:
            return
        if kind == COMPLETED and record.parameters.storage_location.storage_id and not record.storage_path:
            return  # completed once its upload is verified (see uploaded)
        publish(self.app, TaskName.NOTIFY.value, notification(record, kind).model_dump(mode="json"), NOTIFY_QUEUE)

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
        if event.status in (PcStatus.STOPPED, PcStatus.ERROR):
            self.notify(event.capture_id, COMPLETED if event.status is PcStatus.STOPPED else FAILED)

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
                    self.notify(record.capture.arm_id, FAILED)

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
                self.notify(record.capture.arm_id, FAILED)

    def relay(self) -> int:
        """Send what an API process recorded but never saw confirmed (it died, or the broker
        failed it); each message leaves the outbox once the broker confirms it."""
        sent = 0
        for pending in self.registry.take_abandoned():
            publish(self.app, pending.message.task.value, pending.message.payload, pending.message.queue)
            self.registry.message_sent(pending)
            RELAYED.inc()
            log.info("relayed %s for %s", pending.message.task.value, pending.capture_key)
            sent += 1
        return sent

    def uploaded(self, result: UploadResult) -> None:
        UPLOADS.labels("stored" if result.storage_path else "failed").inc()
        if self.registry.apply_upload(result):
            self.notify(result.capture_id, COMPLETED if result.storage_path else FAILED)


def build_control_app(broker_url: str, registry: Registry, heartbeat_seconds: float) -> tuple[Celery, Control]:
    app = make_celery("packetwatch-control", broker_url)
    app.conf.task_queues = [durable_queue(CONTROL_QUEUE)]
    control = Control(app, registry, heartbeat_seconds)

    @app.task(name=TaskName.TICK.value)
    def tick(payload: dict) -> None:
        MESSAGES.labels(TaskName.TICK.value).inc()
        control.tick(datetime.now(timezone.utc))

    @app.task(name=TaskName.STATUS.value)
    def status(payload: dict) -> None:
        MESSAGES.labels(TaskName.STATUS.value).inc()
        control.status(StatusEvent.model_validate(payload))

    @app.task(name=TaskName.UPLOADED.value)
    def uploaded(payload: dict) -> None:
        MESSAGES.labels(TaskName.UPLOADED.value).inc()
        control.uploaded(UploadResult.model_validate(payload))

    @app.task(name=TaskName.HEARTBEAT.value)
    def heartbeat(payload: dict) -> None:
        MESSAGES.labels(TaskName.HEARTBEAT.value).inc()
        beat = Heartbeat.model_validate(payload)
        now = datetime.now(timezone.utc)
        LAG.observe(max(0.0, (now - beat.reported_at).total_seconds()))
        registry.record_heartbeat(beat, now)
        log.debug("heartbeat from %s (%d running)", beat.vm_id, len(beat.running))

    return app, control


def _sweep_forever(control: Control, heartbeat_seconds: float, start_deadline: timedelta) -> None:
    silent_after = timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)
    while True:
        time.sleep(heartbeat_seconds)
        try:
            publish(control.app, TaskName.TICK.value, {}, CONTROL_QUEUE)
            control.relay()
            control.sweep(silent_after)
            control.expire_unstarted(start_deadline)
        except Exception:
            log.warning("tick or sweep failed; trying again", exc_info=True)


def run_control(broker_url: str, database_url: str, heartbeat_seconds: float, start_deadline_seconds: float,
                probes: tuple[str, int], concurrency: int = 2) -> None:
    """Apply agents' news until shut down, serving /metrics, /healthz, /readyz on `probes` (host, port)."""
    registry = Registry.from_url(database_url)
    app, control = build_control_app(broker_url, registry, heartbeat_seconds)
    serve_probes(*probes, lambda: {"database": database_state(registry.engine), "broker": broker_state(broker_url)})
    threading.Thread(target=_sweep_forever, name="sweep", daemon=True,
                     args=(control, heartbeat_seconds, timedelta(seconds=start_deadline_seconds))).start()
    run_worker(app, CONTROL_QUEUE, f"control@{socket.gethostname()}", concurrency)
