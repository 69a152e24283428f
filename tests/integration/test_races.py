"""Races between API processes on one PostgreSQL registry, and hostile bodies at the door."""

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest
from kombu import Connection

from lab.stack import Stack, free_port
from shared.arm import PcStatus
from shared.broker import agent_queue_name
from shared.messages import StatusEvent
from shared.registry import Registry
from shared.resource_ids import CaptureId, VirtualMachineId

API = "?api-version=2026-01-01"


@pytest.fixture(scope="module")
def two_apis(broker_url, postgres_url, tmp_path_factory):
    stack = Stack(broker_url, postgres_url, tmp_path_factory.mktemp("races"))
    try:
        stack.start_api()
        yield stack, [stack.api_url, stack.start_server("api2", free_port())]
    finally:
        stack.stop("api2")
        stack.stop_all()


def _auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token}"}


def _call(stack: Stack, method: str, url: str, **kwargs) -> httpx.Response:
    kwargs.setdefault("headers", _auth(stack))
    return httpx.request(method, url, timeout=30, **kwargs)


def _messages(broker_url: str, vm: VirtualMachineId) -> list[str]:
    names = []
    with Connection(broker_url) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(agent_queue_name(vm), no_ack=True)) is not None:
            names.append(message.headers["task"])
    return names


def _body(vm: VirtualMachineId, seconds: int = 60) -> dict:
    return {"properties": {"target": vm.arm_id, "timeLimitInSeconds": seconds,
                           "storageLocation": {"filePath": "/var/captures/race.cap"}}}


def test_two_api_processes_creating_the_same_capture_at_once_make_one(two_apis, broker_url):
    stack, urls = two_apis
    vm = VirtualMachineId("race", "rg", f"vm-{secrets.token_hex(3)}")
    capture = CaptureId("race", "rg", "nw", f"same-{secrets.token_hex(3)}")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: _call(stack, "PUT", f"{urls[i % 2]}{capture.arm_id}{API}", json=_body(vm)),
                                range(10)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["etag"] for a in answers}) == 1
    assert _messages(broker_url, vm) == ["packetwatch.agent.capture"]


def test_two_different_bodies_for_one_name_get_one_201_and_409s(two_apis, broker_url):
    stack, urls = two_apis
    vm = VirtualMachineId("race", "rg", f"vm-{secrets.token_hex(3)}")
    capture = CaptureId("race", "rg", "nw", f"differ-{secrets.token_hex(3)}")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: _call(stack, "PUT", f"{urls[i % 2]}{capture.arm_id}{API}",
                                                json=_body(vm, 60 + i)), range(10)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 9
    assert _messages(broker_url, vm) == ["packetwatch.agent.capture"]


def test_ten_stop_requests_at_once_send_one_stop(two_apis, broker_url):
    stack, urls = two_apis
    vm = VirtualMachineId("race", "rg", f"vm-{secrets.token_hex(3)}")
    capture = CaptureId("race", "rg", "nw", f"stop-{secrets.token_hex(3)}")
    assert _call(stack, "PUT", f"{urls[0]}{capture.arm_id}{API}", json=_body(vm)).status_code == 201
    registry = Registry.from_url(stack.database_url)
    record = registry.get(capture)
    assert registry.apply(StatusEvent(capture_id=capture.arm_id, run_id=record.run_id, status=PcStatus.RUNNING,
                                      reported_at=datetime.now(timezone.utc)))
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: _call(stack, "POST", f"{urls[i % 2]}{capture.arm_id}/stop{API}"),
                                range(10)))
    assert {a.status_code for a in answers} == {200}
    assert _messages(broker_url, vm) == ["packetwatch.agent.capture", "packetwatch.agent.stop"]


@pytest.mark.parametrize("body, status", [
    (b'{"properties": ' * 200 + b"{}" + b"}" * 200, 400),
    (json.dumps({"properties": {"target": "x" * (1024 * 1024)}}).encode(), 413),
    (b"\x00\xff\xfe", 400),
])
def test_oversized_and_deeply_nested_create_bodies_are_refused(two_apis, body, status):
    stack, urls = two_apis
    capture = CaptureId("race", "rg", "nw", "hostile")
    answer = _call(stack, "PUT", f"{urls[0]}{capture.arm_id}{API}", content=body,
                   headers={"content-type": "application/json", **_auth(stack)})
    assert answer.status_code == status
    assert set(answer.json()["error"]) >= {"code", "message"}
