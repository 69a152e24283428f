"""The messages the front door sends to an agent's queue (`OutboxSender` sends them)."""

from __future__ import annotations

from datetime import datetime

from shared.arm import PacketCaptureParameters
from shared.broker import agent_queue_name
from shared.capture_spec import CaptureSpec
from shared.messages import CaptureRequest, Outgoing, StopRequest, UploadTarget
from shared.resource_ids import CaptureId, VirtualMachineId


def capture_message(spec: CaptureSpec, run_id: str, parameters: PacketCaptureParameters, created: datetime,
                    start_by: datetime, upload: UploadTarget | None) -> Outgoing:
    request = CaptureRequest(capture_id=spec.capture.arm_id, run_id=run_id, target=spec.target.arm_id,
                             parameters=parameters, relative_file_path=spec.relative_file_path,
                             requested_at=created, start_by=start_by, upload=upload)
    return Outgoing.of(request, agent_queue_name(spec.vm))


def stop_message(capture: CaptureId, run_id: str, target: VirtualMachineId, at: datetime) -> Outgoing:
    request = StopRequest(capture_id=capture.arm_id, run_id=run_id, requested_at=at)
    return Outgoing.of(request, agent_queue_name(target))
