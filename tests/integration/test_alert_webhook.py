"""POST /api/alerts on the real broker and database: the right capture, on the right VM, once."""

import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from functions.api import create_app
from lab.stack import Stack
from shared import outbox
from shared.config import Settings
from shared.registry import Registry
from shared.messages import Heartbeat
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId
from tests import alert_samples as s

KEY = "test-function-key-" + secrets.token_hex(8)


def _config(tmp_path, vm_names: dict[str, str]) -> str:
    config = {
        "functionKeys": [KEY],
        "vmNames": vm_names,
        "rules": [
            {"name": "loss", "alertRule": "HighPacket*", "stopOnResolve": True,
             "template": {"timeLimitInSeconds": 120, "filters": [{"protocol": "UDP", "remotePort": "53"}],
                          "namePrefix": "loss"}},
            {"name": "cpu-db", "alertRule": "HighCpu", "labels": {"severity": "Sev3"},
             "template": {"timeLimitInSeconds": 300, "fileDirectory": "/var/captures/cpu"}},
        ],
    }
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def webhook(broker_url, database_url, tmp_path):
    tag = secrets.token_hex(3)
    vm = VirtualMachineId(f"sub-{tag}", "rg1", "web01")
    other = VirtualMachineId(f"sub-{tag}", "rg1", "db01")
    settings = Settings(broker_url=broker_url, database_url=database_url,
                        alert_config=_config(tmp_path, {"db01": other.arm_id}))
    with TestClient(create_app(settings)) as client:
        yield client, vm, other


def _post(client, body, key=KEY, how="header"):
    if how == "header":
        return client.post("/api/alerts", json=body, headers={"x-functions-key": key})
    return client.post(f"/api/alerts?code={key}", json=body)


def _captures(client, vm: VirtualMachineId) -> list[dict]:
    registry: Registry = client.app.state.registry
    watcher = f"/subscriptions/{vm.subscription}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network" \
              f"/networkWatchers/PacketWatch"
    return [r.to_result().to_arm() for r in registry.in_watcher(watcher) if r.parameters.target.lower() == vm.key]


@pytest.mark.parametrize("key, how", [(None, "header"), ("wrong", "header"), ("wrong", "query"), ("", "query")])
def test_a_missing_or_wrong_key_is_401_and_nothing_happens(webhook, key, how):
    client, vm, _ = webhook
    response = client.post("/api/alerts", json=s.azure_common(vm.arm_id)) if key is None \
        else _post(client, s.azure_common(vm.arm_id), key, how)
    assert response.status_code == 401
    assert _captures(client, vm) == []


def test_an_azure_metric_alert_starts_a_capture_on_its_vm_with_the_rules_template(webhook):
    client, vm, _ = webhook
    response = _post(client, s.azure_common(vm.arm_id), how="query")
    assert response.status_code == 202, response.text
    [started] = response.json()["started"]
    assert started["rule"] == "cpu-db" and started["target"].lower() == vm.key
    assert re.fullmatch(r"HighCpu-web01-\d{8}T\d{6}\.\d{3}Z", started["name"])
    [capture] = _captures(client, vm)
    assert capture["id"] == started["id"]
    assert capture["properties"]["timeLimitInSeconds"] == 300
    assert capture["properties"]["storageLocation"]["filePath"] == f"/var/captures/cpu/{started['name']}.cap"


def test_a_re_sent_alert_answers_200_with_the_capture_already_running(webhook):
    client, vm, _ = webhook
    first = _post(client, s.azure_common(vm.arm_id))
    again = _post(client, s.azure_common(vm.arm_id))
    assert again.status_code == 200
    assert again.json()["alreadyRunning"][0]["id"] == first.json()["started"][0]["id"]
    assert "already running" in again.json()["reason"]
    assert len(_captures(client, vm)) == 1


@pytest.mark.parametrize("make", [s.azure_metric_legacy, s.azure_classic, s.azure_activity_log,
                                  s.azure_resource_health])
def test_every_azure_payload_kind_starts_a_capture(webhook, make):
    client, vm, _ = webhook
    response = _post(client, make(vm.arm_id))
    assert response.status_code == 202, response.text
    assert len(_captures(client, vm)) == 1


def test_alertmanager_and_grafana_find_the_vm_by_id_label_or_by_name_table(webhook):
    client, vm, other = webhook
    by_id = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id}))
    by_name = _post(client, s.grafana({"instance": "db01:9100"}))
    assert by_id.status_code == 202 and by_name.status_code == 202
    [loss] = _captures(client, vm)
    assert loss["name"].startswith("loss-web01-")
    assert loss["properties"]["filters"] == [{"protocol": "UDP", "remotePort": "53"}]
    [latency] = _captures(client, other)
    assert latency["properties"]["timeLimitInSeconds"] == 600, "the default template"
    unknown = _post(client, s.alertmanager({"instance": "nobody:9100"}))
    assert unknown.status_code == 200 and "names no VM" in unknown.json()["reason"]


def test_resolved_alerts_start_nothing_and_a_rule_can_stop_its_capture(webhook):
    client, vm, _ = webhook
    resolved_first = _post(client, s.azure_common(vm.arm_id, condition="Resolved"))
    assert resolved_first.status_code == 200 and "resolved" in resolved_first.json()["reason"]
    assert _captures(client, vm) == []
    started = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id})).json()["started"][0]
    stopped = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id}, status="resolved"))
    assert stopped.status_code == 200 and stopped.json()["stopped"][0]["id"] == started["id"]
    registry: Registry = client.app.state.registry
    [record] = [r for r in registry.in_watcher(started["id"].rsplit("/packetCaptures/", 1)[0])]
    assert (record.status.value, record.stop_reason) == ("Stopped", "ManuallyStopped")
    again = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id}))
    assert again.status_code == 202, "after its capture ended, the alert may start a new one"


def test_a_target_that_is_not_a_vm_starts_nothing_and_says_why(webhook):
    client, vm, _ = webhook
    workspace = f"/subscriptions/{vm.subscription}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/w"
    response = _post(client, s.azure_log_alert(workspace))
    assert response.status_code == 200
    assert response.json()["reason"] == f"target {workspace} is not a virtual machine or scale set"


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "must be JSON"),
    (json.dumps({"hello": "world"}).encode(), 400, "is not an alert PacketWatch knows"),
    (b"[" * 100 + b"]" * 100, 400, "nests deeper"),
    (json.dumps({"target": "x", "padding": "a" * 300_000}).encode(), 413, "limited to"),
])
def test_what_cannot_be_understood_is_refused_before_anything_starts(webhook, body, status, fragment):
    client, vm, _ = webhook
    response = client.post("/api/alerts", content=body, headers={"x-functions-key": KEY,
                                                                 "content-type": "application/json"})
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]


def test_a_plain_trigger_can_override_the_template_and_bad_overrides_name_the_field(webhook):
    client, vm, _ = webhook
    bad = _post(client, {"target": vm.arm_id, "rule": "script", "capture": {"timeLimitInSeconds": 99999}})
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "capture.timeLimitInSeconds"
    good = _post(client, {"target": vm.arm_id, "rule": "script", "capture": {"timeLimitInSeconds": 30}})
    assert good.status_code == 202
    assert _captures(client, vm)[0]["properties"]["timeLimitInSeconds"] == 30


def test_ten_identical_alerts_at_once_start_exactly_one_capture(broker_url, postgres_url, tmp_path):
    tag = secrets.token_hex(3)
    vm = VirtualMachineId(f"sub-{tag}", "rg1", "web01")
    stack = Stack(broker_url, postgres_url, tmp_path, extra_env={"PACKETWATCH_ALERT_CONFIG": _config(tmp_path, {})})
    try:
        stack.start_api()
        body = s.alertmanager({"vm_resource_id": vm.arm_id})
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{stack.api_url}/api/alerts?code={KEY}", json=body,
                                                         timeout=30), range(10)))
    finally:
        stack.stop_all()
    assert sorted(a.status_code for a in answers) == [200] * 9 + [202]
    started = [a.json()["started"][0]["id"] for a in answers if a.status_code == 202]
    assert {a.json()["alreadyRunning"][0]["id"] for a in answers if a.status_code == 200} == set(started)
    registry = Registry.from_url(postgres_url)
    watcher = started[0].rsplit("/packetCaptures/", 1)[0]
    assert [r.capture.arm_id for r in registry.in_watcher(watcher)] == started


def test_alertmanager_labels_naming_a_scale_set_and_an_instance_capture_there_once_per_rule(webhook):
    client, vm, _ = webhook
    scale_set = ScaleSetId(vm.subscription, "rg1", "webset")
    registry: Registry = client.app.state.registry
    for instance in ("0", "1", "2"):  # the instances' agents have reported
        registry.record_heartbeat(Heartbeat(vm_id=scale_set.instance(instance).arm_id, version="t", hostname="h",
                                            reported_at=datetime.now(timezone.utc), running=[]),
                                  datetime.now(timezone.utc))
    whole = _post(client, s.alertmanager({"vm_resource_id": scale_set.arm_id}, alertname="SetLoss", count=3))
    [started] = whole.json()["started"]
    parent = registry.get(CaptureId.parse(started["id"]))
    assert parent.parameters.target_type.value == "AzureVMSS" and parent.parameters.target == scale_set.arm_id
    assert [part.capture.instance for part in registry.instances(parent.capture)] == ["0", "1", "2"]
    assert [held["id"] for held in whole.json()["alreadyRunning"]] == [started["id"]] * 2, "three alerts, one capture"
    one = _post(client, s.alertmanager({"vm_resource_id": scale_set.arm_id, "vmss_instance": "webset_1"},
                                       alertname="SetLoss"))
    [narrow] = one.json()["started"]
    record = registry.get(CaptureId.parse(narrow["id"]))
    assert record.parameters.scope.include == ["1"]
    assert [part.capture.instance for part in registry.instances(record.capture)] == ["1"]
    again = _post(client, s.alertmanager({"vm_resource_id": scale_set.arm_id, "vmss_instance": "1"},
                                         alertname="SetLoss"))
    assert again.json()["alreadyRunning"][0]["id"] == narrow["id"], "deduplicated per (instance, rule)"


def test_an_alert_capture_goes_to_the_regional_watcher_of_a_vm_whose_agent_reports_its_region(webhook):
    client, vm, other = webhook
    registry: Registry = client.app.state.registry
    now = datetime.now(timezone.utc)
    registry.record_heartbeat(Heartbeat(vm_id=vm.arm_id, version="t", hostname="h", reported_at=now,
                                        location="westeurope"), now)
    [started] = _post(client, s.azure_common(vm.arm_id, rule="Regional")).json()["started"]
    assert CaptureId.parse(started["id"]).watcher_path == (
        f"/subscriptions/{vm.subscription}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/"
        "networkWatchers/NetworkWatcher_westeurope")
    [unplaced] = _post(client, s.azure_common(other.arm_id, rule="Regional")).json()["started"]
    assert CaptureId.parse(unplaced["id"]).network_watcher == "PacketWatch", "no region known: the configured one"


def test_an_alert_while_the_broker_is_down_is_accepted_and_its_request_kept_for_the_relay(database_url, tmp_path):
    vm = VirtualMachineId(f"sub-{secrets.token_hex(3)}", "rg1", "web01")
    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:1//", database_url=database_url,
                        alert_config=_config(tmp_path, {}))
    with TestClient(create_app(settings)) as client:
        answer = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id}))
        assert answer.status_code == 202, answer.text
        [started] = answer.json()["started"]
        again = _post(client, s.alertmanager({"vm_resource_id": vm.arm_id}))
        assert again.json()["alreadyRunning"][0]["id"] == started["id"]
    # the app has shut down: its outbox sender gave up on the broker
    registry = Registry.from_url(database_url)
    capture = CaptureId.parse(started["id"])
    assert registry.get(capture).status.value == "NotStarted"
    with registry.engine.connect() as conn:
        [kept] = outbox.for_capture(conn, capture.key)
    assert (kept.message.task.value, kept.message.payload["capture_id"]) == ("packetwatch.agent.capture", capture.arm_id)
