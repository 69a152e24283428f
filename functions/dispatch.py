"""Publishing capture and stop requests to the target VM's queue."""

from __future__ import annotations

from datetime import datetime, timezone

from kombu.exceptions import OperationalError

from shared.arm import PacketCaptureParameters
from shared.broker import agent_queue_name, make_celery, publish
from shared.capture_spec import CaptureSpec
from shared.errors import BrokerUnavailable
from shared.messages import CaptureRequest, StopRequest, TaskName
from shared.resource_ids import CaptureId, VirtualMachineId


class Dispatcher:
    def __init__(self, broker_url: str) -> None:
        self.app = make_celery("packetwatch-api", broker_url)

    def _send(self, task: TaskName, payload: dict, vm: VirtualMachineId) -> None:
        try:
            publish(self.app, task.value, payload, agent_queue_name(vm))
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(str(exc)) from exc

    def send_capture(self, spec: CaptureSpec, run_id: str, parameters: PacketCaptureParameters,
                     created: datetime) -> None:
        request = CaptureRequest(capture_id=spec.capture.arm_id, run_id=run_id, target=spec.target.arm_id,
                                 parameters=parameters,
                                 relative_file_path=spec.relative_file_path, requested_at=created)
        self._send(TaskName.CAPTURE, request.model_dump(mode="json", by_alias=True), spec.target)

    def send_stop(self, capture: CaptureId, run_id: str, target: VirtualMachineId) -> None:
        request = StopRequest(capture_id=capture.arm_id, run_id=run_id, requested_at=datetime.now(timezone.utc))
        self._send(TaskName.STOP, request.model_dump(mode="json"), target)
