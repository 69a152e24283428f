"""An upload whose file is gone (a rolling ring removed it first) is not lost silently: the
agent reports it failed, naming why, on the real broker's control queue."""

import json

from kombu import Connection

from shared.broker import CONTROL_QUEUE
from shared.messages import TaskName, UploadRequest, UploadResult, UploadTarget
from shared.resource_ids import CaptureId, VirtualMachineId
from workers.agent import Agent, AgentConfig


def test_an_upload_of_a_file_no_longer_on_the_vm_is_reported_failed_naming_why(broker_url, tmp_path):
    vm = VirtualMachineId("00000000-0000-0000-0000-000000000001", "rg", "vm-uploads")
    agent = Agent(AgentConfig(vm=vm, interface="lo", netns=None, capture_dir=tmp_path, broker_url=broker_url))
    capture = CaptureId(vm.subscription, "rg", "watcher", "ring")
    gone = tmp_path / "ring_00001.cap"
    agent.upload(UploadRequest(capture_id=capture.arm_id, run_id="run-1", local_path=str(gone), keep_local=False,
                               upload=UploadTarget(url="http://127.0.0.1:9/account/container/blob?sig=x",
                                                   retry_seconds=5), sha256="", file_index=1))
    with Connection(broker_url) as conn:
        message = conn.channel().basic_get(CONTROL_QUEUE, no_ack=True)
    assert message is not None and message.headers["task"] == TaskName.UPLOADED.value
    result = UploadResult.model_validate(json.loads(message.body)[0][0])
    assert (result.file_index, result.storage_path, result.local_path) == (1, None, str(gone))
    assert "no longer on the VM" in result.error_message
