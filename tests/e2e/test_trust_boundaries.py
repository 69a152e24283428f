"""A hostile VM: with VM A's own broker credentials (as its agent was enrolled), try everything
one VM could do to another's evidence on the real RabbitMQ: read B's capture requests, publish
to B's queue, speak as B, make or remove queues, and forge B's reports to the control worker.
Every attempt is refused by the broker or dropped by the control worker, and B's capture ends
as B's agent says, with its file and blob intact."""

import hashlib
import json
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

import amqp
import pytest
from azure.core.exceptions import HttpResponseError
from amqp.exceptions import AccessRefused, NotAllowed, PreconditionFailed
from azure.storage.blob import BlobClient, BlobServiceClient
from kombu import Connection

from lab.stack import STORAGE_ID
from lab.traffic import inbound, send
from shared.arm import PcStatus, Talker
from shared.broker import CONTROL_QUEUE, agent_queue_name, make_celery, publish
from shared.broker_identity import AGENTS_EXCHANGE, REPORTS_EXCHANGE
from shared.messages import (
    CaptureStatistics, FileClosed, Heartbeat, RunProgress, StatusEvent, TaskName, UploadResult, body_of,
)
from shared.registry import Registry
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.storage_layout import BLOB_CONTAINER
from tests.e2e.conftest import tshark_records
from tests.e2e.test_operations import moved, scrape

REFUSALS = (AccessRefused, NotAllowed, PreconditionFailed)


def _channel(url: str) -> tuple[amqp.Connection, amqp.Channel]:
    info = Connection(url).info()
    connection = amqp.Connection(f"{info['hostname']}:{info['port']}", userid=info["userid"],
                                 password=info["password"], virtual_host=info["virtual_host"], connect_timeout=10,
                                 confirm_publish=True)  # a refused publish then fails the publish itself
    connection.connect()
    channel = connection.channel()
    return connection, channel


def _answer(url: str, attempt) -> str:
    """What the broker answered `attempt(channel)`, on a connection of A's own: its refusal,
    or "allowed"."""
    connection, channel = _channel(url)
    try:
        attempt(channel)
        return "allowed"
    except REFUSALS as refused:
        return str(refused)
    finally:
        try:
            connection.close()
        except Exception:
            pass


def _message(user_id: str | None = None) -> amqp.Message:
    properties = {"user_id": user_id} if user_id else {}
    return amqp.Message(json.dumps([[{}], {}, {}]), content_type="application/json", **properties)


def _eventually(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.2)


def test_the_broker_refuses_what_one_vm_could_do_to_another(lab):
    a, b = lab.stack.agent_broker_url(lab.vm1.vm), lab.stack.agent_broker_url(lab.vm2.vm)
    mine, theirs = agent_queue_name(lab.vm1.vm), agent_queue_name(lab.vm2.vm)
    attempts = {
        "read B's capture requests": lambda ch: ch.basic_consume(theirs, callback=lambda m: None),
        "fetch one of B's requests": lambda ch: ch.basic_get(theirs),
        "purge B's queue": lambda ch: ch.queue_purge(theirs),
        "delete B's queue": lambda ch: ch.queue_delete(theirs),
        "delete the control queue": lambda ch: ch.queue_delete(CONTROL_QUEUE),
        "declare a queue of its own choosing": lambda ch: ch.queue_declare(f"evil-{secrets.token_hex(3)}"),
        "delete the reports exchange": lambda ch: ch.exchange_delete(REPORTS_EXCHANGE),
        "publish to B's queue by name": lambda ch: ch.basic_publish(_message(), "", theirs),
        "publish to the control queue by name": lambda ch: ch.basic_publish(_message(), "", CONTROL_QUEUE),
        "publish to B on the agents' exchange": lambda ch: ch.basic_publish(_message(), AGENTS_EXCHANGE, theirs),
        "bind its queue to B's requests": lambda ch: ch.queue_bind(mine, AGENTS_EXCHANGE, theirs),
        "bind its queue to everyone's": lambda ch: ch.queue_bind(mine, AGENTS_EXCHANGE, "#"),
        "speak as B": lambda ch: ch.basic_publish(_message(user_id=theirs), REPORTS_EXCHANGE, CONTROL_QUEUE),
    }
    answers = {what: _answer(a, attempt) for what, attempt in attempts.items()}
    allowed = {what: answer for what, answer in answers.items()
               if not any(code in answer for code in ("ACCESS_REFUSED", "PRECONDITION_FAILED", "NOT_ALLOWED"))}
    assert not allowed, allowed
    assert "user_id" in answers["speak as B"]
    # What A may do, it can: its own queue, its own reports (a sanity check that the refusals
    # above are about B, not about A being unable to do anything).
    connection, channel = _channel(a)
    try:
        channel.queue_declare(mine, passive=True)
        channel.basic_publish(_message(user_id=mine), REPORTS_EXCHANGE, "no-such-route")
    finally:
        connection.close()
    assert b != a


def test_reports_forged_by_another_vm_are_dropped_and_leave_the_capture_intact(lab, tmp_path):
    a_vm, b_vm = lab.vm1, lab.vm2
    capture = CaptureId(b_vm.vm.subscription, b_vm.vm.resource_group, "e2e-watcher", f"victim-{secrets.token_hex(3)}")
    port, packets = 7801, 12
    body = {"target": b_vm.vm.arm_id, "timeLimitInSeconds": 120,
            "storageLocation": {"storageId": STORAGE_ID, "filePath": f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    made = lab.client.create(capture, body)
    assert made.status_code == 201, made.text
    planned = made.json()["properties"]["storageLocation"]["storagePath"]
    lab.client.wait_for(capture, "Running")
    run_id = Registry.from_url(lab.stack.database_url).get(capture).run_id
    control = lab.stack.metrics_url("control")
    before = scrape(control)

    hostile = make_celery("hostile-vm", lab.stack.agent_broker_url(a_vm.vm))
    now = datetime.now(timezone.utc)
    forged = [
        StatusEvent(capture_id=capture.arm_id, run_id=run_id, status=PcStatus.STOPPED, reported_at=now,
                    stop_reason="TimeExceeded"),
        Heartbeat(vm_id=b_vm.vm.arm_id, version="6.6.6", hostname="attacker", reported_at=now, running=[],
                  progress={run_id: RunProgress(packets=999_999, bytes=1)}),
        CaptureStatistics(capture_id=capture.arm_id, run_id=run_id, sha256="0" * 64, protocols={"EVIL": 1},
                          top_talkers=[Talker(source="198.18.66.66", destination="198.18.66.67", packets=1, bytes=1)]),
        UploadResult(capture_id=capture.arm_id, run_id=run_id, storage_path="https://attacker.example/evil.cap",
                     local_path="/etc/shadow"),
        FileClosed(capture_id=capture.arm_id, run_id=run_id, index=1, local_path="/etc/shadow", packets=1, bytes=1,
                   sha256="0" * 64, closed_at=now),
    ]
    for message in forged:
        task = {StatusEvent: TaskName.STATUS, Heartbeat: TaskName.HEARTBEAT, CaptureStatistics: TaskName.STATISTICS,
                UploadResult: TaskName.UPLOADED, FileClosed: TaskName.FILE_CLOSED}[type(message)]
        publish(hostile, task.value, body_of(message), CONTROL_QUEUE, via=REPORTS_EXCHANGE)
    _eventually(lambda: sum(moved(before, scrape(control), "packetwatch_control_reports_refused_total",
                                  task=task.value, why="not_owner") for task in TaskName) == len(forged), timeout=30)

    status = lab.client.status(capture)
    assert status["packetCaptureStatus"] == "Running", "a forged Stopped was applied"
    send(b_vm, [inbound(b_vm, "UDP", port + 1, port, payload=100)], repeat=packets)
    lab.client.stop(capture)
    done = lab.client.wait_for(capture, "Stopped", "Error", timeout=30)
    assert done["packetCaptureStatus"] == "Stopped" and done["stopReason"] == "ManuallyStopped"
    read = lab.client.wait_read(capture)
    stored = lab.client.wait_stored(capture)
    assert stored == planned, "the record points at the blob its own agent stored"
    local = Path(read["packetWatchSummary"]["filePaths"][0])
    assert len(tshark_records(local)) == packets
    blob = BlobServiceClient.from_connection_string(lab.azurite.connection_string).get_blob_client(
        BLOB_CONTAINER, stored.split(f"/{BLOB_CONTAINER}/", 1)[1])
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    assert hashlib.sha256(blob.download_blob().readall()).hexdigest() == digest
    assert blob.get_blob_properties().metadata["sha256"] == digest
    summary = read["packetWatchSummary"]
    assert summary["protocols"] == {"UDP": packets} and summary["sha256"] == digest
    agents = {agent["vm"].lower(): agent for agent in lab.client.agents().json()["value"]}
    assert agents[b_vm.vm.arm_id.lower()]["hostname"] != "attacker", "a forged heartbeat was applied"
    log = (lab.stack.workdir / "control.log").read_text()
    assert agent_queue_name(a_vm.vm) in log and agent_queue_name(b_vm.vm) in log, \
        "the refusal names who it claimed to be and who sent it"
    assert Path("/etc/shadow").exists()


def test_a_stored_capture_cannot_be_overwritten_with_the_sas_its_agent_was_given(lab):
    """As an agent does, by hand: the capture request's SAS, an upload to it, the upload result
    sent ahead of Stopped (the control worker tries it again later, itself, keeping the agent
    it came from; had it lost its origin it would be dropped), then Stopped. The control
    worker seals the upload into the capture's blob; afterwards the same SAS, still valid,
    can write neither that blob nor change what it holds."""
    vm = VirtualMachineId(lab.vm1.vm.subscription, "trust-rg", f"sealed-{secrets.token_hex(3)}")
    capture = CaptureId(vm.subscription, vm.resource_group, "e2e-watcher", "sealed")
    made = lab.client.create(capture, {"target": vm.arm_id, "timeLimitInSeconds": 60,
                                       "storageLocation": {"storageId": STORAGE_ID}})
    assert made.status_code == 201, made.text
    planned = made.json()["properties"]["storageLocation"]["storagePath"]
    run_id = Registry.from_url(lab.stack.database_url).get(capture).run_id
    with Connection(lab.stack.broker_url) as conn:  # the request, as this VM's agent would take it
        message = conn.channel().basic_get(agent_queue_name(vm), no_ack=True)
    sas_url = json.loads(message.body)[0][0]["upload"]["url"]
    evidence = b"\xd4\xc3\xb2\xa1" + secrets.token_bytes(5000)
    BlobClient.from_blob_url(sas_url).upload_blob(evidence, overwrite=True)
    control = lab.stack.metrics_url("control")
    before = scrape(control)
    agent = make_celery("sealed-vm", lab.stack.agent_broker_url(vm))  # this VM's own agent identity

    def report(task: TaskName, message) -> None:
        publish(agent, task.value, body_of(message), CONTROL_QUEUE, via=REPORTS_EXCHANGE)

    report(TaskName.UPLOADED, UploadResult(capture_id=capture.arm_id, run_id=run_id,
                                           storage_path=sas_url.split("?")[0], local_path="/var/captures/sealed.cap"))
    time.sleep(2)  # tried again several times meanwhile (every half second)
    assert lab.client.status(capture)["packetWatchStored"] is False
    now = datetime.now(timezone.utc)
    report(TaskName.STATUS, StatusEvent(capture_id=capture.arm_id, run_id=run_id, status=PcStatus.RUNNING,
                                        reported_at=now, capture_start_time=now))
    report(TaskName.STATUS, StatusEvent(capture_id=capture.arm_id, run_id=run_id, status=PcStatus.STOPPED,
                                        reported_at=now, capture_start_time=now, stop_reason="ManuallyStopped"))
    assert lab.client.wait_stored(capture, timeout=30) == planned, "sealed into the capture's own blob"
    assert sum(moved(before, scrape(control), "packetwatch_control_reports_refused_total", task=task.value, why=why)
               for task in TaskName for why in ("not_owner", "unknown_sender")) == 0

    blobs = BlobServiceClient.from_connection_string(lab.azurite.connection_string)
    stored = blobs.get_blob_client(BLOB_CONTAINER, planned.split(f"/{BLOB_CONTAINER}/", 1)[1])
    assert stored.download_blob().readall() == evidence
    final_with_sas = planned + "?" + sas_url.split("?", 1)[1]
    with pytest.raises(HttpResponseError) as refused:
        BlobClient.from_blob_url(final_with_sas).upload_blob(b"forged", overwrite=True)
    assert refused.value.status_code == 403, "the SAS never named the capture's blob"
    BlobClient.from_blob_url(sas_url).upload_blob(b"forged", overwrite=True)  # its own staging blob, again
    report(TaskName.UPLOADED, UploadResult(capture_id=capture.arm_id, run_id=run_id,
                                           storage_path=sas_url.split("?")[0], local_path="/var/captures/sealed.cap"))
    time.sleep(1)
    assert stored.download_blob().readall() == evidence, "what was sealed stays as it was"
    assert lab.client.get(capture).json()["properties"]["storageLocation"]["storagePath"] == planned
