"""The ARM routes over the ASGI app, with the registry on a real database and requests
published to the real broker."""

import asyncio
import json
import secrets

import azure.functions as func
import pytest
from fastapi.testclient import TestClient

from functions.api import create_app
from shared.config import Settings
from shared.resource_ids import CaptureId, VirtualMachineId
from tests.integration.conftest import access_config, bearer, capture_body, queued_messages

API = "?api-version=2026-01-01"


def test_create_records_the_capture_and_queues_it_for_that_vm_only(env, broker_url):
    client, vm, capture = env
    response = client.put(capture.arm_id + API, json=capture_body(vm))
    assert response.status_code == 201
    assert "/operations/" in response.headers["Azure-AsyncOperation"]
    body = response.json()
    assert body["id"] == capture.arm_id and body["name"] == "pc1"
    assert body["properties"]["totalBytesPerSession"] == 1073741824
    assert body["properties"]["provisioningState"] == "Succeeded"
    [(task, payload)] = queued_messages(broker_url, vm)
    assert task == "packetwatch.agent.capture"
    assert payload["capture_id"] == capture.arm_id and payload["relative_file_path"] == "pc1.cap"
    assert queued_messages(broker_url, VirtualMachineId("sub-a", "rg-a", "someone-else")) == []
    assert client.get(capture.arm_id + API).json() == body
    listed = client.get(capture.watcher_path + "/packetCaptures" + API).json()
    assert [c["name"] for c in listed["value"]] == ["pc1"]
    status = client.post(capture.arm_id + "/queryStatus" + API).json()
    assert status["packetCaptureStatus"] == "NotStarted"


def test_a_repeated_identical_create_queues_nothing_more(env, broker_url):
    client, vm, capture = env
    first = client.put(capture.arm_id + API, json=capture_body(vm))
    second = client.put(capture.arm_id + API, json=capture_body(vm))
    assert second.status_code == 201 and second.json()["etag"] == first.json()["etag"]
    assert len(queued_messages(broker_url, vm)) == 1
    conflict = client.put(capture.arm_id + API, json=capture_body(vm, timeLimitInSeconds=5))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "PacketCaptureConflict"


@pytest.mark.parametrize("change, target", [
    ({"filters": [{"localIPAddress": "1.1.1.1-255.255.255"}]}, "properties.filters[0].localIPAddress"),
    ({"filters": [{"localIPAddress": "10.0.0.300"}]}, "properties.filters[0].localIPAddress"),
    ({"filters": [{}, {"localPort": "80-70"}]}, "properties.filters[1].localPort"),
    ({"filters": [{"remotePort": "70000"}]}, "properties.filters[0].remotePort"),
    ({"filters": [{"remotePort": "80;;443"}]}, "properties.filters[0].remotePort"),
    ({"filters": [{"protocol": "ICMP"}]}, "properties.filters[0].protocol"),
    ({"storageLocation": {"filePath": "/etc/pc1.cap"}}, "properties.storageLocation.filePath"),
    ({"storageLocation": {"filePath": "/var/captures/pc1.pcap"}}, "properties.storageLocation.filePath"),
    ({"storageLocation": {"filePath": "/var/captures/../../etc/x.cap"}}, "properties.storageLocation.filePath"),
    ({"storageLocation": {}}, "properties.storageLocation"),
    ({"timeLimitInSeconds": 18001}, "properties.timeLimitInSeconds"),
    ({"target": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x"}, "properties.target"),
    ({"filters": [{"localIPAddress": "198.18.0.1", "remoteIPAddress": "2001:db8::1"}]}, "filters"),
])
def test_bad_values_get_400_naming_the_field_and_nothing_isqueued(env, broker_url, change, target):
    client, vm, capture = env
    body = capture_body(vm)
    body["properties"].update(change)
    response = client.put(capture.arm_id + API, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"].endswith(target) and error["code"] == "InvalidParameter"
    assert target.split(".")[-1].split("[")[0] in error["message"]
    assert client.get(capture.arm_id + API).status_code == 404
    assert queued_messages(broker_url, vm) == []


def test_errors_are_arm_shaped(env):
    client, vm, capture = env
    missing = client.get(capture.arm_id + API)
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "target"}
    no_version = client.get(capture.arm_id)
    assert no_version.status_code == 400 and no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    bad_name = client.put(capture.watcher_path + "/packetCaptures/-bad" + API, json=capture_body(vm))
    assert bad_name.status_code == 400 and bad_name.json()["error"]["target"] == "packetCaptureName"
    not_json = client.put(capture.arm_id + API, content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400


def test_stop_before_start_is_recorded_and_stopping_again_changes_nothing(env, broker_url):
    client, vm, capture = env
    client.put(capture.arm_id + API, json=capture_body(vm))
    assert client.post(capture.arm_id + "/stop" + API).status_code == 200
    status = client.post(capture.arm_id + "/queryStatus" + API).json()
    assert (status["packetCaptureStatus"], status["stopReason"]) == ("Stopped", "ManuallyStopped")
    etag = client.get(capture.arm_id + API).json()["etag"]
    assert client.post(capture.arm_id + "/stop" + API).status_code == 200
    assert client.get(capture.arm_id + API).json()["etag"] == etag
    assert [task for task, _ in queued_messages(broker_url, vm)] == ["packetwatch.agent.capture", "packetwatch.agent.stop"]


def test_delete_stops_then_removes_and_a_second_delete_is_204(env, broker_url):
    client, vm, capture = env
    client.put(capture.arm_id + API, json=capture_body(vm))
    deleted = client.delete(capture.arm_id + API)
    assert deleted.status_code == 202 and "/operationResults/" in deleted.headers["Location"]
    assert client.get(capture.arm_id + API).status_code == 404
    assert client.delete(capture.arm_id + API).status_code == 204
    assert [task for task, _ in queued_messages(broker_url, vm)] == ["packetwatch.agent.capture", "packetwatch.agent.stop"]


def test_when_the_broker_is_down_create_answers_503_and_records_nothing(database_url, tmp_path):
    app = create_app(Settings(broker_url="amqp://guest:guest@127.0.0.1:1//", database_url=database_url,
                              access_config=access_config(tmp_path)))
    vm = VirtualMachineId("sub-a", "rg-a", "vm-down")
    capture = CaptureId("sub-a", "rg-a", f"nw-{secrets.token_hex(3)}", "pc1")
    with TestClient(app, headers=bearer("contributor-a")) as client:
        response = client.put(capture.arm_id + API, json=capture_body(vm))
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert client.get(capture.arm_id + API).status_code == 404


def test_the_same_app_answers_through_azure_functions_objects(env):
    client, vm, capture = env
    middleware = func.AsgiMiddleware(client.app)
    request = func.HttpRequest("PUT", "http://localhost" + capture.arm_id + API,
                               headers={"content-type": "application/json", **bearer("contributor-a")},
                               body=json.dumps(capture_body(vm)).encode())
    response = asyncio.run(middleware.handle_async(request))
    assert response.status_code == 201
    assert json.loads(response.get_body())["id"] == capture.arm_id


def test_tokens_are_scoped_to_subscriptions_and_roles(env):
    client, vm, capture = env
    assert client.put(capture.arm_id + API, json=capture_body(vm)).status_code == 201
    for headers, status, code in [({"Authorization": ""}, 401, "AuthenticationFailed"),
                                  ({"Authorization": "Bearer nope"}, 401, "InvalidAuthenticationToken"),
                                  ({"Authorization": "Basic Y29udHJpYnV0b3ItYQ=="}, 401, "AuthenticationFailed"),
                                  (bearer("contributor-b"), 403, "AuthorizationFailed")]:
        for method, path in [("GET", capture.arm_id), ("POST", capture.arm_id + "/stop"),
                             ("GET", capture.watcher_path + "/packetCaptures"), ("DELETE", capture.arm_id)]:
            answer = client.request(method, path + API, headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (method, path, headers)
    reader = bearer("reader-a")
    assert client.get(capture.arm_id + API, headers=reader).status_code == 200
    assert client.post(capture.arm_id + "/queryStatus" + API, headers=reader).status_code == 200
    other = CaptureId("sub-a", "rg-a", capture.network_watcher, "by-reader")
    for method, path, body, action in [("PUT", other.arm_id, capture_body(vm), "write"),
                                       ("POST", capture.arm_id + "/stop", None, "stop/action"),
                                       ("DELETE", capture.arm_id, None, "delete")]:
        answer = client.request(method, path + API, headers=reader, json=body)
        message = answer.json()["error"]["message"]  # ARM's words: who, which action, over which scope
        assert answer.status_code == 403 and f"perform action 'Microsoft.Network/networkWatchers/packetCaptures/" \
            f"{action}' over scope '{path.removesuffix('/stop')}'" in message and "token 'reader-a'" in message
    assert client.post(capture.arm_id + "/queryStatus" + API).json()["packetCaptureStatus"] == "NotStarted"
    assert client.get(other.arm_id + API).status_code == 404
