"""Capture requests over the broker (shared/submissions.py), on real RabbitMQ and the lab's
running API: a raw AMQP publish and a Celery send_task each get one answer; a refused
submission is answered and dead-lettered with why; a resend makes one capture; a capture
submitted on the queue runs on a netns VM and its lifecycle events follow it."""

import collections
import json
import re
import secrets
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from celery import Celery
from kombu import Connection, Queue

from lab.stack import LAB_SUBMITTER
from lab.traffic import inbound, send
from shared.lifecycle_events import EVENTS_EXCHANGE, binding
from shared.resource_ids import CaptureId
from shared.submissions import MAX_SUBMISSION_BYTES, REJECTED_QUEUE, SUBMIT_EXCHANGE, SUBMIT_ROUTING_KEY
from tests.e2e.conftest import tshark_records

ELSEWHERE = "00000000-0000-0000-0000-0000000e15e0"


def _capture(lab, name: str, subscription: str | None = None) -> CaptureId:
    vm = lab.vm1.vm
    return CaptureId(subscription or vm.subscription, vm.resource_group, "PacketWatch",
                     f"{name}-{secrets.token_hex(3)}")


def _properties(lab, capture: CaptureId, **more) -> dict:
    return {"target": lab.vm1.vm.arm_id, "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"},
            "timeLimitInSeconds": 60, **more}


@contextmanager
def _channel(broker_url: str):
    with Connection(broker_url, transport_options={"confirm_publish": True}) as connection:
        yield connection, connection.channel()


def _publish(channel, body: bytes, reply_to: str | None = None, headers: dict | None = None,
             message_id: str | None = None, **properties) -> str:
    correlation_id = str(uuid.uuid4())
    extra = {"reply_to": reply_to, "correlation_id": correlation_id} if reply_to else {}
    channel.basic_publish(channel.prepare_message(
        body, content_type="application/json",
        properties={"delivery_mode": 2, "message_id": message_id or correlation_id, **extra, **properties},
        headers=headers), exchange=SUBMIT_EXCHANGE.name, routing_key=SUBMIT_ROUTING_KEY)
    return correlation_id


def _answers(connection, channel, reply_to: str, count: int, timeout: float = 30) -> list[dict]:
    got: list = []
    channel.basic_consume(reply_to, no_ack=True, callback=got.append)
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            connection.drain_events(timeout=0.5)
        except TimeoutError:
            pass
    assert len(got) == count, f"{len(got)} of {count} answers in {timeout} s"
    return [{"correlation_id": m.properties.get("correlation_id"), **json.loads(m.body)} for m in got]


def _rejected(lab, message_id: str, timeout: float = 15) -> dict:
    """The dead-lettered copy of a message (its headers), taken off the rejected queue."""
    deadline = time.monotonic() + timeout
    with Connection(lab.stack.broker_url) as connection:
        queue = REJECTED_QUEUE(connection.channel())
        seen = []
        while time.monotonic() < deadline:
            message = queue.get(no_ack=False)
            if message is None:
                time.sleep(0.1)
                continue
            if message.properties.get("message_id") == message_id:
                message.ack()
                return {"headers": message.headers, "body": message.body, "properties": message.properties}
            seen.append(message)
        for message in seen:
            message.requeue()
    raise AssertionError(f"{message_id} was not dead-lettered in {timeout} s")


def test_a_raw_amqp_submission_is_answered_runs_on_the_vm_and_its_events_follow_it(lab):
    vm = lab.vm1
    capture = _capture(lab, "queued")
    body = {"ID": capture.arm_id,  # ARM's casing rules: names match in any case
            "properties": _properties(lab, capture, FILTERS=[{"protocol": "udp", "localport": "7700"}])}
    with _channel(lab.stack.broker_url) as (connection, channel):
        events = Queue("", EVENTS_EXCHANGE, exclusive=True, binding_arguments=binding(capture=capture.arm_id))(channel)
        EVENTS_EXCHANGE(channel).declare()
        events.declare()
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        sent = _publish(channel, json.dumps(body).encode(), reply_to, {"authorization": f"Bearer {lab.stack.token}"})
        [answer] = _answers(connection, channel, reply_to, 1)
        assert answer["correlation_id"] == sent and answer["status"] == 201, answer
        assert answer["messageId"] == sent and answer["contract"] == "packetwatch.capture-submission.v1"
        shown = lab.client.get(capture).json()
        assert {**answer["capture"], "etag": None} == {**shown, "etag": None}, "the capture as GET returns it"
        assert answer["capture"]["properties"]["filters"] == [{"protocol": "UDP", "localPort": "7700"}]

        lab.client.wait_for(capture, "Running")
        send(vm, [inbound(vm, "UDP", 40001, 7700, payload=64)], repeat=5)
        send(vm, [inbound(vm, "UDP", 40001, 7701, payload=64)], repeat=3)
        assert lab.client.stop(capture).status_code == 200
        status = lab.client.wait_for(capture, "Stopped")
        records = tshark_records(Path(status["packetWatchSummary"]["filePaths"][0]))
        assert collections.Counter(r[:5] for r in records) == {("UDP", str(vm.peer), str(vm.address), 40001, 7700): 5}

        seen: list = []
        channel.basic_consume(events.name, no_ack=True, callback=seen.append)
        deadline = time.monotonic() + 15
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    types = [message.headers["ce-type"] for message in seen]
    assert types == ["com.packetwatch.capture.created", "com.packetwatch.capture.running",
                     "com.packetwatch.capture.stopped"]
    for message in seen:
        assert message.headers["ce-capture"] == capture.key and message.headers["ce-specversion"] == "1.0"
        assert message.headers["ce-vm"] == vm.vm.key and message.headers["ce-subject"] == capture.arm_id
    stopped = json.loads(seen[-1].body)
    assert stopped["packetCaptureStatus"] == "Stopped" and stopped["packetWatchSummary"]["packets"] == 5
    metrics = httpx.get(f"{lab.stack.api_url}/metrics", timeout=10).text
    assert re.search(r'^packetwatch_captures_created_total\{source="queue"\} [1-9]', metrics, re.M)
    assert re.search(r'^packetwatch_queue_submissions_total\{outcome="created"\} [1-9]', metrics, re.M)


def test_a_celery_client_submits_with_send_task_and_gets_the_answer_from_its_result(lab):
    capture = _capture(lab, "celery")
    app = Celery("a-soar-playbook", broker=lab.stack.broker_url, backend="rpc://")
    try:
        result = app.send_task("packetwatch.submit_capture", exchange=SUBMIT_EXCHANGE.name,
                               routing_key=SUBMIT_ROUTING_KEY, headers={"authorization": f"Bearer {lab.stack.token}"},
                               kwargs={"id": capture.arm_id, "properties": _properties(lab, capture)})
        answer = result.get(timeout=30)
        assert answer["status"] == 201 and answer["capture"]["id"] == capture.arm_id
        assert answer["messageId"] == result.id
        again = app.send_task("packetwatch.submit_capture", exchange=SUBMIT_EXCHANGE.name,
                              routing_key=SUBMIT_ROUTING_KEY, headers={"authorization": f"Bearer {lab.stack.token}"},
                              kwargs={"id": capture.arm_id,
                                      "properties": _properties(lab, capture, timeLimitInSeconds=61)})
        conflict = again.get(timeout=30)
        assert conflict["status"] == 409 and conflict["error"]["code"] == "PacketCaptureConflict"
    finally:
        app.close()
    assert lab.client.delete(capture).status_code == 202


@pytest.mark.parametrize("case", ["not_json", "unknown_field", "wrong_type", "oversize", "no_identity",
                                  "unknown_token"])
def test_a_refused_submission_gets_its_answer_and_is_dead_lettered_with_why(lab, case):
    capture = _capture(lab, "refused")
    token = {"authorization": f"Bearer {lab.stack.token}"}
    good = {"id": capture.arm_id, "properties": _properties(lab, capture)}
    body, headers, status, code, names = {
        "not_json": (b"{not json", token, 400, "InvalidParameter", "body"),
        "unknown_field": (json.dumps({**good, "properties": _properties(lab, capture, fileCount=3)}).encode(),
                          token, 400, "InvalidParameter", "properties.fileCount"),
        "wrong_type": (json.dumps({**good, "properties": _properties(lab, capture, timeLimitInSeconds="soon",
                                                                    bytesToCapturePerPacket=-1)}).encode(),
                       token, 400, "InvalidParameter", "properties.timeLimitInSeconds"),
        "oversize": (json.dumps({**good, "pad": "x" * MAX_SUBMISSION_BYTES}).encode(), token, 413,
                     "PayloadTooLarge", "bytes"),
        "no_identity": (json.dumps(good).encode(), None, 401, "AuthenticationFailed", "bearer token"),
        "unknown_token": (json.dumps(good).encode(), {"authorization": "Bearer pwt_not-a-token"}, 401,
                          "InvalidAuthenticationToken", "not known"),
    }[case]
    with _channel(lab.stack.broker_url) as (connection, channel):
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        message_id = _publish(channel, body, reply_to, headers)
        [answer] = _answers(connection, channel, reply_to, 1)
    assert answer["status"] == status and answer["error"]["code"] == code, answer
    assert names in answer["error"]["message"] or names in json.dumps(answer["error"].get("details", [])), answer
    if case == "wrong_type":  # every bad field, as a PUT's 400
        assert "properties.bytesToCapturePerPacket" in json.dumps(answer["error"])
    dead = _rejected(lab, message_id)
    assert dead["body"] == body and dead["headers"]["x-packetwatch-status"] == status
    assert dead["headers"]["x-packetwatch-error-code"] == code
    assert "authorization" not in dead["headers"], "a token is never kept in the dead letters"
    assert lab.client.get(capture).status_code == 404, "nothing was created"


def test_a_submission_delivered_twice_makes_one_capture(lab):
    capture = _capture(lab, "twice")
    body = json.dumps({"id": capture.arm_id, "properties": _properties(lab, capture)}).encode()
    with _channel(lab.stack.broker_url) as (connection, channel):
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        token = {"authorization": f"Bearer {lab.stack.token}"}
        first = _publish(channel, body, reply_to, token, message_id="resent-" + capture.name)
        second = _publish(channel, body, reply_to, token, message_id="resent-" + capture.name)
        answers = {answer["correlation_id"]: answer for answer in _answers(connection, channel, reply_to, 2)}
    assert sorted(answers[c]["status"] for c in (first, second)) == [200, 201]
    assert answers[first]["capture"]["etag"] == answers[second]["capture"]["etag"], "one capture, answered twice"
    listed = lab.client.list(capture).json()["value"]
    assert [item["name"] for item in listed].count(capture.name) == 1
    assert lab.client.delete(capture).status_code == 202


@pytest.fixture
def submitter(lab):
    """The broker user the lab's access file grants (its subscription only), made for the test."""
    password = secrets.token_hex(16)
    vhost = lab.stack.broker_url.rsplit("/", 1)[1]

    def rabbitmqctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    rabbitmqctl("add_user", LAB_SUBMITTER, password)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, LAB_SUBMITTER, "^amq\\.gen.*", "^(packetwatch\\.submissions|amq\\.gen.*)$",
                    "^amq\\.gen.*")
        yield lab.stack.broker_url.replace("guest:guest", f"{LAB_SUBMITTER}:{password}")
    finally:
        rabbitmqctl("delete_user", LAB_SUBMITTER)


def test_the_broker_vouches_for_a_submitter_that_is_held_to_its_subscriptions(lab, submitter):
    mine, elsewhere = _capture(lab, "vouched"), _capture(lab, "elsewhere", ELSEWHERE)
    with _channel(submitter) as (connection, channel):
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        sent_mine = _publish(channel, json.dumps({"id": mine.arm_id, "properties": _properties(lab, mine)}).encode(),
                             reply_to, user_id=LAB_SUBMITTER)
        sent_elsewhere = _publish(channel, json.dumps({"id": elsewhere.arm_id,
                                                       "properties": _properties(lab, elsewhere)}).encode(),
                                  reply_to, user_id=LAB_SUBMITTER)
        answers = {a["correlation_id"]: a for a in _answers(connection, channel, reply_to, 2)}
    assert answers[sent_mine]["status"] == 201, answers[sent_mine]
    refused = answers[sent_elsewhere]
    assert refused["status"] == 403 and refused["error"]["code"] == "AuthorizationFailed"
    assert LAB_SUBMITTER in refused["error"]["message"] and ELSEWHERE in refused["error"]["message"]
    assert _rejected(lab, sent_elsewhere)["headers"]["x-packetwatch-user-id"] == LAB_SUBMITTER
    assert lab.client.delete(mine).status_code == 202

    from amqp.exceptions import PreconditionFailed

    with _channel(submitter) as (connection, channel):  # claiming to be another user: the broker refuses
        with pytest.raises(PreconditionFailed):
            _publish(channel, b"{}", user_id="guest")


def test_the_cli_submits_on_the_queue_and_prints_the_lifecycle_events(lab):
    capture = _capture(lab, "cli-queue")
    env = {"PACKETWATCH_BROKER_URL": lab.stack.broker_url, "PACKETWATCH_TOKEN": lab.stack.token,
           "PACKETWATCH_SUBSCRIPTION": capture.subscription, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    events = subprocess.Popen([sys.executable, "-m", "cli.main", "queue", "events", "-g", capture.resource_group,
                               "-n", capture.name, "--count", "2", "--timeout", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(3)  # its queue is bound before the capture is submitted
        made = subprocess.run([sys.executable, "-m", "cli.main", "queue", "submit", "-g", capture.resource_group,
                               "-n", capture.name, "--vm", lab.vm1.vm.name, "--file-path",
                               f"/var/captures/e2e/{capture.name}.cap", "--time-limit", "30"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["id"] == capture.arm_id
        printed, _ = events.communicate(timeout=60)
    finally:
        events.kill()
    kinds = [json.loads(line)["type"] for line in printed.splitlines()]
    assert kinds == ["com.packetwatch.capture.created", "com.packetwatch.capture.running"]
    refused = subprocess.run([sys.executable, "-m", "cli.main", "queue", "submit", "-g", capture.resource_group,
                              "-n", capture.name, "--vm", lab.vm1.vm.name, "--file-path",
                              f"/var/captures/e2e/{capture.name}.cap", "--time-limit", "31"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("packetwatch: PacketCaptureConflict: ")
    assert lab.client.delete(capture).status_code == 202


def test_an_intake_killed_mid_submission_loses_nothing_and_runs_each_capture_once(lab):
    """A second API process whose intake dies (SIGKILL) once a submission is recorded, before
    its request is confirmed and its answer sent: the message comes back to the surviving
    intake, which answers it (200: the capture is already there) and sends its request."""
    from cli.supervisor import free_port

    lab.stack.start_server("api-intake-crash", free_port(), env={"PACKETWATCH_FAILPOINTS": "capture.recorded"})
    crashing = lab.stack.processes["api-intake-crash"]
    sent: dict[str, CaptureId] = {}
    with _channel(lab.stack.broker_url) as (connection, channel):
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        for _ in range(10):  # until the crashing intake has taken one (deliveries go round the consumers)
            capture = _capture(lab, "crash")
            body = json.dumps({"id": capture.arm_id, "properties": _properties(lab, capture)}).encode()
            sent[_publish(channel, body, reply_to, {"authorization": f"Bearer {lab.stack.token}"})] = capture
            time.sleep(0.3)
            if crashing.poll() is not None:
                break
        assert crashing.wait(10) == -9, "the second intake died at its failpoint"
        lab.stack.processes.pop("api-intake-crash")
        answers = {a["correlation_id"]: a for a in _answers(connection, channel, reply_to, len(sent), timeout=60)}
    assert set(answers) == set(sent), "every confirmed submission is answered"
    assert 200 in {a["status"] for a in answers.values()}, "the one the dead intake recorded came back as it was"
    agent_log = (lab.stack.workdir / f"agent-{lab.vm1.netns}.log").read_text
    for capture in sent.values():
        lab.client.wait_for(capture, "Running", timeout=60)
        assert agent_log().count(f"capture {capture.arm_id} run ") == 1, "each capture ran exactly once"
        assert lab.client.delete(capture).status_code == 202
