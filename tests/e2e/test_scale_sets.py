"""Scale set captures on netns VMs: a scale set of three instances, each with its own agent
(identified by its instance resource ID). One capture runs on every instance in scope,
each file read back with tshark holding exactly that instance's matching traffic; include
and exclude pick instances as ARM says; the status aggregates the instances'; stop and
delete reach every instance; the files are stored per instance."""

from __future__ import annotations

import collections
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.mgmt.network.models import PacketCapture, PacketCaptureMachineScope, PacketCaptureStorageLocation
from azure.storage.blob import BlobServiceClient

from lab.stack import STORAGE_ID
from lab.traffic import inbound, send
from lab.vms import LabVm, create_vms, remove_vms
from shared.registry import Registry
from shared.resource_ids import CaptureId, ScaleSetId
from shared.storage_layout import BLOB_CONTAINER
from tests import alert_samples as s
from tests.e2e.conftest import FUNCTION_KEY, tshark_records
from tests.e2e.test_cli import _cli
from tests.e2e.test_console import PLAYWRIGHT_CORE, ROOT, SCREENSHOTS

PORT = 7500


@pytest.fixture(scope="module")
def scale_set(lab) -> Iterator[tuple[ScaleSetId, list[LabVm]]]:
    name = f"ss{secrets.token_hex(2)}"
    vms = create_vms(3, scale_set=name)
    try:
        for vm in vms:
            lab.stack.start_agent(vm)
        yield vms[0].vm.scale_set_id, vms
    finally:
        for vm in vms:
            lab.stack.stop(f"agent-{vm.netns}")
        remove_vms(vms)


def _create(lab, scale_set: ScaleSetId, port: int, **extra: object) -> tuple[CaptureId, dict]:
    capture = CaptureId(scale_set.subscription, scale_set.resource_group, "e2e-watcher", f"ss-{secrets.token_hex(3)}")
    body = {"target": scale_set.arm_id, "targetType": "AzureVMSS",
            "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"},
            "filters": [{"protocol": "UDP", "localPort": str(port)}], **extra}
    answer = lab.client.create(capture, body)
    return capture, {"status": answer.status_code, "body": answer.json() if answer.content else None}


def _running(lab, capture: CaptureId, count: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        status = lab.client.status(capture)
        instances = status.get("packetWatchInstances", [])
        if len(instances) == count and all(i["status"] == "Running" for i in instances):
            assert status["packetCaptureStatus"] == "Running"
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def _traffic(vms: list[LabVm], port: int) -> dict[str, list]:
    """Each instance gets its own flows (its remote port says which), and one other port."""
    sent = {}
    for index, vm in enumerate(vms):
        flows = [inbound(vm, "UDP", 41000 + index * 10 + n, port) for n in range(3)]
        send(vm, flows + [inbound(vm, "UDP", 41000, port + 1)], repeat=2)
        sent[vm.vm.name] = flows * 2
    return sent


def _files_hold_their_traffic(status: dict, sent: dict[str, list], expected: set[str]) -> None:
    instances = {i["instanceId"]: i for i in status["packetWatchInstances"]}
    assert set(instances) == expected
    for instance_id, entry in instances.items():
        [path] = entry["filePaths"]
        seen = collections.Counter(record[:5] for record in tshark_records(Path(path)))
        assert seen == collections.Counter(flow.five_tuple for flow in sent[instance_id]), instance_id
        assert entry["packets"] == len(sent[instance_id])


def test_a_capture_runs_on_every_instance_and_each_file_holds_its_own_traffic(lab, scale_set):
    ss, vms = scale_set
    capture, answer = _create(lab, ss, PORT)
    assert answer["status"] == 201, answer
    assert answer["body"]["properties"]["targetType"] == "AzureVMSS"
    _running(lab, capture, 3)
    sent = _traffic(vms, PORT)
    time.sleep(0.5)
    lab.client.stop(capture)
    status = lab.client.wait_for(capture, "Stopped", "Error", timeout=30)
    assert (status["packetCaptureStatus"], status["stopReason"]) == ("Stopped", "ManuallyStopped")
    assert status["packetWatchSummary"]["packets"] == 18
    _files_hold_their_traffic(status, sent, {"0", "1", "2"})
    for vm in vms:  # each instance wrote at filePath on itself
        assert (lab.stack.capture_dir(vm) / "e2e" / f"{capture.name}.cap").exists()
    agents = {a["vm"]: a for a in lab.client.agents().json()["value"]}
    assert [(agents[vm.vm.arm_id]["scaleSet"], agents[vm.vm.arm_id]["instanceId"]) for vm in vms] == [
        (ss.arm_id, "0"), (ss.arm_id, "1"), (ss.arm_id, "2")], "each agent reports its scale set and instance"
    listed = lab.client.list(capture).json()["value"]
    assert [c["name"] for c in listed if c["name"] == capture.name] == [capture.name], "one capture, not three"


@pytest.mark.parametrize(("scope", "expected"), [
    ({"include": ["1", "{ss}_2"]}, {"1", "2"}),
    ({"exclude": ["0"]}, {"1", "2"}),
    ({"include": ["0", "1"], "exclude": ["1"]}, {"0"}),
])
def test_include_and_exclude_pick_the_instances(lab, scale_set, scope, expected):
    ss, vms = scale_set
    scope = {key: [entry.format(ss=ss.name) for entry in values] for key, values in scope.items()}
    capture, answer = _create(lab, ss, PORT + 10, scope=scope)
    assert answer["status"] == 201, answer
    _running(lab, capture, len(expected))
    sent = _traffic(vms, PORT + 10)
    time.sleep(0.5)
    lab.client.stop(capture)
    status = lab.client.wait_for(capture, "Stopped", timeout=30)
    _files_hold_their_traffic(status, sent, expected)
    outside = [vm for vm in vms if vm.vm.name not in expected]
    assert not any((lab.stack.capture_dir(vm) / "e2e" / f"{capture.name}.cap").exists() for vm in outside)


def test_an_instance_without_an_agent_is_refused_naming_it(lab, scale_set):
    ss, _vms = scale_set
    capture, answer = _create(lab, ss, PORT, scope={"include": ["1", "7"]})
    assert answer["status"] == 400 and "properties.scope.include[1]" in str(answer["body"]), answer
    nobody = ScaleSetId(ss.subscription, ss.resource_group, "no-agents-here")
    capture, answer = _create(lab, nobody, PORT)
    assert answer["status"] == 400 and answer["body"]["error"]["code"] == "AgentNotFound", answer
    vm_type, answer = _create(lab, ss, PORT, targetType="AzureVM")
    assert answer["status"] == 400 and "targetType to AzureVMSS" in str(answer["body"]), answer


def test_delete_reaches_every_instance_and_files_are_stored_per_instance(lab, scale_set, tmp_path):
    ss, vms = scale_set
    capture, answer = _create(lab, ss, PORT + 20, storageLocation={"storageId": STORAGE_ID},
                              timeLimitInSeconds=60)
    assert answer["status"] == 201, answer
    _running(lab, capture, 3)
    sent = _traffic(vms, PORT + 20)
    time.sleep(0.5)
    lab.client.stop(capture)
    deadline = time.monotonic() + 30
    while not all(i.get("storagePath") for i in lab.client.status(capture)["packetWatchInstances"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    service = BlobServiceClient.from_connection_string(lab.azurite.connection_string)
    links = lab.client.download_url(capture).json()["instances"]
    assert [link["instanceId"] for link in links] == ["0", "1", "2"]
    assert all(httpx.get(link["url"], timeout=10).content[:4] == bytes.fromhex("d4c3b2a1") for link in links)
    for entry in lab.client.status(capture)["packetWatchInstances"]:
        blob = entry["storagePath"].split(f"/{BLOB_CONTAINER}/")[1]
        assert blob.startswith(f"{ss.key.lstrip('/')}/virtualmachines/{entry['instanceId']}/")
        local = tmp_path / f"{entry['instanceId']}.cap"
        local.write_bytes(service.get_blob_client(BLOB_CONTAINER, blob).download_blob().readall())
        seen = collections.Counter(record[:5] for record in tshark_records(local))
        assert seen == collections.Counter(flow.five_tuple for flow in sent[entry["instanceId"]])

    running, answer = _create(lab, ss, PORT + 30)
    _running(lab, running, 3)
    assert lab.client.delete(running).status_code in (200, 202)
    deadline = time.monotonic() + 20
    registry = Registry.from_url(lab.stack.database_url)
    while any(agent.running for agent in registry.scale_set_agents(ss)):
        assert time.monotonic() < deadline, "an instance still runs the deleted capture"
        time.sleep(0.2)
    assert lab.client.get(running).status_code == 404


def test_the_cli_creates_a_scale_set_capture_with_az_flags(lab, scale_set):
    ss, _vms = scale_set
    name = f"ss-cli-{secrets.token_hex(3)}"
    made = _cli(lab, "packet-capture", "create", "-g", ss.resource_group, "-n", name, "--target", ss.name,
                "--target-type", "AzureVMSS", "--include", "1", "2", "--exclude", "2",
                "--file-path", f"/var/captures/e2e/{name}.cap")
    assert made.returncode == 0, made.stderr
    properties = json.loads(made.stdout)["properties"]
    assert properties["target"] == ss.arm_id and properties["targetType"] == "AzureVMSS"
    assert properties["scope"] == {"include": ["1", "2"], "exclude": ["2"]}
    shown = _cli(lab, "packet-capture", "show-status", "-g", ss.resource_group, "-n", name)
    assert shown.returncode == 0, shown.stderr
    assert [i["instanceId"] for i in json.loads(shown.stdout)["packetWatchInstances"]] == ["1"]
    assert _cli(lab, "packet-capture", "delete", "-g", ss.resource_group, "-n", name).returncode == 0
    wrong = _cli(lab, "packet-capture", "create", "-g", ss.resource_group, "-n", name, "--vm", "x", "--include", "1",
                 "--file-path", f"/var/captures/e2e/{name}.cap")
    assert wrong.returncode == 2 and "--target-type AzureVMSS" in wrong.stderr


def test_alerts_on_a_scale_set_capture_on_its_instances_once_per_rule(lab, scale_set):
    ss, _vms = scale_set

    def fire(rule: str, instance: str | None = None) -> httpx.Response:
        body = s.azure_common(ss.arm_id, rule=rule)
        if instance is not None:
            body["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [{"name": "VMName",
                                                                                     "value": instance}]
        return httpx.post(f"{lab.stack.api_url}/api/alerts?code={FUNCTION_KEY}", json=body, timeout=10)

    whole = fire("E2eVmssCpu")
    assert whole.status_code == 202, whole.text
    [started] = whole.json()["started"]
    capture = CaptureId.parse(started["id"])
    assert _running(lab, capture, 3)["packetWatchInstances"]
    again = fire("E2eVmssCpu")
    assert again.json()["alreadyRunning"][0]["id"] == capture.arm_id, "one capture per (scale set, rule)"
    one = fire("E2eVmssCpu", instance=f"{ss.name}_2")
    [narrow] = one.json()["started"]
    narrow_capture = CaptureId.parse(narrow["id"])
    status = _running(lab, narrow_capture, 1)
    assert [i["instanceId"] for i in status["packetWatchInstances"]] == ["2"]
    for held in (capture, narrow_capture):
        lab.client.stop(held)
        lab.client.wait_for(held, "Stopped", timeout=30)


def test_the_azure_sdk_creates_a_scale_set_capture_with_a_scope_and_reads_its_status(lab, scale_set, sdk):
    ss, _vms = scale_set
    name = f"ss-sdk-{secrets.token_hex(3)}"
    parameters = PacketCapture(
        target=ss.arm_id, target_type="AzureVMSS", scope=PacketCaptureMachineScope(include=["0", "2"]),
        storage_location=PacketCaptureStorageLocation(file_path=f"/var/captures/e2e/{name}.cap"),
        time_limit_in_seconds=60)
    created = sdk.packet_captures.begin_create(ss.resource_group, "sdk-watcher", name, parameters).result()
    assert created.target_type == "AzureVMSS" and created.scope.include == ["0", "2"]
    capture = CaptureId(ss.subscription, ss.resource_group, "sdk-watcher", name)
    _running(lab, capture, 2)
    status = sdk.packet_captures.begin_get_status(ss.resource_group, "sdk-watcher", name).result()
    assert status.packet_capture_status == "Running"
    sdk.packet_captures.begin_stop(ss.resource_group, "sdk-watcher", name).result()
    lab.client.wait_for(capture, "Stopped", timeout=30)
    assert sdk.packet_captures.begin_get_status(ss.resource_group, "sdk-watcher", name).result() \
        .packet_capture_status == "Stopped"
    sdk.packet_captures.begin_delete(ss.resource_group, "sdk-watcher", name).result()


def test_a_silent_instance_ends_in_error_on_its_own_and_the_capture_says_which(lab, scale_set):
    ss, vms = scale_set
    capture, answer = _create(lab, ss, PORT + 40)
    assert answer["status"] == 201, answer
    _running(lab, capture, 3)
    lab.stack.stop(f"agent-{vms[1].netns}", signal.SIGKILL)
    try:
        deadline = time.monotonic() + 60
        while True:
            instances = {i["instanceId"]: i for i in lab.client.status(capture)["packetWatchInstances"]}
            if instances["1"]["status"] == "Error":
                break
            assert time.monotonic() < deadline, instances
            time.sleep(0.5)
        assert instances["1"]["errors"] == ["AgentStopped"]
        assert lab.client.status(capture)["packetCaptureStatus"] == "Running", "the other two still run"
        lab.client.stop(capture)
        status = lab.client.wait_for(capture, "Error", timeout=30)
        assert status["packetCaptureError"] == ["AgentStopped"] and status["packetWatchErrorMessage"].startswith(
            "instance 1: ")
        assert [i["status"] for i in status["packetWatchInstances"]] == ["Stopped", "Error", "Stopped"]
    finally:
        lab.stack.start_agent(vms[1])


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
def test_the_console_creates_a_scale_set_capture_with_the_instance_picker(lab, scale_set):
    ss, _vms = scale_set
    name = f"ss-console-{secrets.token_hex(3)}"
    SCREENSHOTS.mkdir(exist_ok=True)
    env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "SCREENSHOTS": str(SCREENSHOTS),
           "CONSOLE_URL": lab.stack.api_url + "/", "TOKEN": lab.stack.token, "SUBSCRIPTION": ss.subscription,
           "RESOURCE_GROUP": ss.resource_group, "WATCHER": "console-watcher", "SCALE_SET": ss.arm_id,
           "UNCHECK": "0", "CAPTURE_NAME": name}
    flow = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "console_scale_set.cjs")], env=env, text=True,
                          capture_output=True, timeout=120)
    assert flow.returncode == 0 and "DONE" in flow.stdout, flow.stderr
    capture = CaptureId(ss.subscription, ss.resource_group, "console-watcher", name)
    properties = lab.client.get(capture).json()["properties"]
    assert properties["targetType"] == "AzureVMSS" and properties["target"] == ss.arm_id
    assert properties["scope"]["include"] == ["1", "2"]
    assert [i["instanceId"] for i in lab.client.status(capture)["packetWatchInstances"]] == ["1", "2"]
    assert lab.client.delete(capture).status_code == 202


def test_a_continuous_scale_set_capture_lists_each_instance_files(lab, scale_set):
    ss, vms = scale_set
    record = 16 + 14 + 20 + 8 + 64
    capture, answer = _create(lab, ss, PORT + 50, scope={"include": ["0", "1"]}, continuousCapture=True,
                              captureSettings={"fileCount": 5, "fileSizeInBytes": 24 + 4 * record + 10,
                                               "sessionTimeLimitInSeconds": 60},
                              bytesToCapturePerPacket=200,
                              storageLocation={"localPath": "/var/captures/e2e/ss-ring.cap"})
    assert answer["status"] == 201, answer
    _running(lab, capture, 2)
    for vm in vms[:2]:
        send(vm, [inbound(vm, "UDP", 42000 + n, PORT + 50, payload=64) for n in range(10)])
    time.sleep(0.5)
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped", timeout=30)
    deadline = time.monotonic() + 30
    while True:
        instances = lab.client.status(capture)["packetWatchInstances"]
        counts = [[f["packets"] for f in i.get("files") or []] for i in instances]
        if counts == [[4, 4, 2], [4, 4, 2]]:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)
    assert all(f["path"].startswith(str(lab.stack.capture_dir(vm))) for vm, i in zip(vms, instances) for f in i["files"])
