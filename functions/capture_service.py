"""Creating and stopping captures: the one path shared by the ARM routes and the alert webhook.

A capture is recorded first and then published; if the broker does not confirm, the record
is removed again, so an answered request is always queued and a refused one leaves nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone

from functions.dispatch import Dispatcher
from shared.arm import PacketCaptureParameters, PcStatus, StopReason
from shared.capture_spec import CaptureSpec, build_spec
from shared.messages import StatusEvent
from shared.registry import CaptureRecord, Registry
from shared.resource_ids import CaptureId, VirtualMachineId

ACTIVE = (PcStatus.NOT_STARTED, PcStatus.RUNNING)


class CaptureService:
    def __init__(self, registry: Registry, dispatcher: Dispatcher, capture_root: str) -> None:
        self.registry = registry
        self.dispatcher = dispatcher
        self.capture_root = capture_root

    def record(self, capture: CaptureId, parameters: PacketCaptureParameters) -> tuple[CaptureSpec, CaptureRecord, bool]:
        """Check and record a capture without publishing it: (spec, record, created)."""
        now = datetime.now(timezone.utc)
        spec = build_spec(capture, parameters, self.capture_root, now)
        record, is_new = self.registry.create(capture, parameters, spec.target.key, now)
        return spec, record, is_new

    def publish(self, spec: CaptureSpec, record: CaptureRecord) -> None:
        """Queue a recorded capture for its agent; if the broker refuses, the record goes."""
        try:
            self.dispatcher.send_capture(spec, record.run_id, record.parameters, record.created_at)
        except Exception:
            self.registry.delete(record.capture)
            raise

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters) -> tuple[CaptureRecord, bool]:
        """Returns (record, created). Raises InvalidField, CaptureConflict or BrokerUnavailable."""
        spec, record, is_new = self.record(capture, parameters)
        if is_new:
            self.publish(spec, record)
        return record, is_new

    def stop(self, record: CaptureRecord) -> None:
        """Ask the agent to stop an active capture, once; a stopped one is left as it is."""
        if record.status not in ACTIVE or not self.registry.request_stop(record):
            return
        try:
            self.dispatcher.send_stop(record.capture, record.run_id, VirtualMachineId.parse(record.parameters.target))
        except Exception:
            self.registry.clear_stop_request(record)
            raise
        if record.status is PcStatus.NOT_STARTED:
            self.registry.apply(StatusEvent(capture_id=record.capture.arm_id, run_id=record.run_id,
                                            status=PcStatus.STOPPED, reported_at=datetime.now(timezone.utc),
                                            stop_reason=StopReason.MANUALLY_STOPPED.value))
