"""What the API tests share: tokens for two subscriptions, a client on the real app, and the
messages waiting in a VM's queue."""

import json
import secrets

import pytest
from amqp.exceptions import NotFound
from fastapi.testclient import TestClient
from kombu import Connection

from functions.api import create_app
from shared import outbox
from shared.access import hash_token
from shared.broker import agent_queue_name
from shared.config import Settings
from shared.resource_ids import CaptureId, VirtualMachineId


TOKENS = {"contributor-a": ("contributor", ["sub-a"]), "reader-a": ("reader", ["sub-a"]),
          "contributor-b": ("contributor", ["SUB-B"])}


def access_config(folder) -> str:
    path = folder / "access.json"
    path.write_text(json.dumps({"tokens": [
        {"name": name, "sha256": hash_token(name + "-secret"), "role": role, "subscriptions": subs}
        for name, (role, subs) in TOKENS.items()]}))
    return str(path)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}-secret"}


@pytest.fixture
def env(broker_url, database_url, tmp_path):
    suffix = secrets.token_hex(3)
    vm = VirtualMachineId("sub-a", "rg-a", f"vm-{suffix}")
    app = create_app(Settings(broker_url=broker_url, database_url=database_url,
                              access_config=access_config(tmp_path)))
    with TestClient(app, headers=bearer("contributor-a")) as client:
        yield client, vm, CaptureId("sub-a", "rg-a", f"nw-{suffix}", "pc1")


def capture_body(vm: VirtualMachineId, **extra) -> dict:
    return {"properties": {"target": vm.arm_id, "storageLocation": {"filePath": "/var/captures/pc1.cap"},
                           "filters": [{"protocol": "TCP", "localPort": "8080"}], **extra}}


def queue_messages(broker_url: str, queue: str) -> list[tuple[str, dict]]:
    """Take every message waiting in a queue: (task name, payload); none when there is no such queue."""
    taken = []
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            channel.queue_declare(queue, passive=True)
        except NotFound:
            return taken
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args = json.loads(message.body)[0]
            taken.append((message.headers["task"], args[0]))
    return taken


def queued_messages(broker_url: str, vm: VirtualMachineId) -> list[tuple[str, dict]]:
    """Take every message waiting in the VM's queue."""
    return queue_messages(broker_url, agent_queue_name(vm))


def unsent(registry, record):
    """The messages of this run of the capture still in the outbox."""
    with registry.engine.connect() as conn:
        return outbox.for_capture(conn, record.capture.key, record.run_id)
