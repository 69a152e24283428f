"""A request means exactly what it says: ARM's property names in any case, unknown
properties refused (never dropped), every bad value named in one answer, and only the
api-versions whose shape is served."""

import pytest

from shared.arm import SUPPORTED_API_VERSIONS
from tests.integration.conftest import capture_body, queued_messages

API = "?api-version=2026-01-01"


def test_property_names_match_in_any_case_as_arm_does(env, broker_url):
    client, vm, capture = env
    body = {"Properties": {"TARGET": vm.arm_id, "storagelocation": {"FilePath": "/var/captures/pc1.cap"},
                           "timeLimitInSeconds": 30,
                           "filters": [{"Protocol": "udp", "localIpAddress": "198.18.0.2", "RemotePort": "53"}]}}
    response = client.put(capture.arm_id + API, json=body)
    assert response.status_code == 201, response.text
    [stored] = response.json()["properties"]["filters"]
    assert stored == {"protocol": "UDP", "localIPAddress": "198.18.0.2", "remotePort": "53"}
    [(_, payload)] = queued_messages(broker_url, vm)
    sent = {key: value for key, value in payload["parameters"]["filters"][0].items() if value is not None}
    assert sent == stored, "the agent gets the filter as written, not a wider one"


@pytest.mark.parametrize("where, extra, named, hint", [
    ("filter", {"filters": [{"protocol": "TCP", "localIp": "198.18.0.2"}]}, "properties.filters[0].localIp",
     "localIPAddress"),
    ("filter", {"filters": [{"protocol": "TCP", "remotePorts": "443"}]}, "properties.filters[0].remotePorts",
     "remotePort"),
    ("storageLocation", {"storageLocation": {"filePath": "/var/captures/pc1.cap", "fileName": "x"}},
     "properties.storageLocation.fileName", None),
    ("properties", {"timeLimitSeconds": 60}, "properties.timeLimitSeconds", "timeLimitInSeconds"),
])
def test_an_unknown_property_is_refused_and_named_never_dropped(env, broker_url, where, extra, named, hint):
    client, vm, capture = env
    response = client.put(capture.arm_id + API, json=capture_body(vm, **extra))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"] == named and "refused" in error["message"]
    if hint:
        assert f"did you mean {hint!r}" in error["message"]
    assert client.get(capture.arm_id + API).status_code == 404
    assert queued_messages(broker_url, vm) == []


def test_a_property_given_twice_in_different_cases_is_refused(env):
    client, vm, capture = env
    body = capture_body(vm, filters=[{"localIPAddress": "198.18.0.2", "localIpAddress": "198.18.0.3"}])
    response = client.put(capture.arm_id + API, json=body)
    assert response.status_code == 400
    assert "given twice" in response.json()["error"]["message"]


def test_every_invalid_value_of_a_body_is_reported_in_one_answer(env, broker_url):
    """Values the schema refuses (an enum, a range) and values the parsers refuse (addresses,
    ports, paths) come back together, each with its field path and hint."""
    client, vm, capture = env
    body = capture_body(vm, timeLimitInSeconds=99999, filters=[
        {"protocol": "ICMP", "localIPAddress": "10.0.0", "localPort": "80:90"},
        {"protocol": "UDP", "remoteIPAddress": "10.0.0.1-10.0.0", "remotePort": "70000"},
    ])
    body["properties"]["storageLocation"]["filePath"] = "/etc/passwd.cap"
    response = client.put(capture.arm_id + API, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    by_target = {detail["target"]: detail["message"] for detail in error["details"]}
    assert list(by_target) == ["properties.timeLimitInSeconds", "properties.filters[0].protocol",
                               "properties.storageLocation.filePath",
                               "properties.filters[0].localIPAddress", "properties.filters[0].localPort",
                               "properties.filters[1].remoteIPAddress", "properties.filters[1].remotePort"]
    assert "'TCP', 'UDP' or 'Any'" in by_target["properties.filters[0].protocol"]
    assert "18000" in by_target["properties.timeLimitInSeconds"]
    assert "/var/captures" in by_target["properties.storageLocation.filePath"]
    assert "it has 3 parts, an IPv4 address has 4" in by_target["properties.filters[0].localIPAddress"]
    assert "did you mean 80-90?" in by_target["properties.filters[0].localPort"]
    assert "it has 3 parts" in by_target["properties.filters[1].remoteIPAddress"]
    assert "above 65535" in by_target["properties.filters[1].remotePort"]
    assert error["message"].startswith("7 invalid values")
    assert client.get(capture.arm_id + API).status_code == 404 and queued_messages(broker_url, vm) == []


def test_every_bad_element_of_one_list_is_named(env):
    client, vm, capture = env
    response = client.put(capture.arm_id + API, json=capture_body(vm, filters=[
        {"localIPAddress": "198.18.0.2;10.0.0.300;010.1.2.3;198.18.0.9-198.18.0.1"}]))
    message = response.json()["error"]["message"]
    assert "300 is above 255" in message and "did you mean 10.1.2.3?" in message
    assert "did you mean 198.18.0.1-198.18.0.9?" in message


@pytest.mark.parametrize("version", ["2021-02-01", "2023-11-01", "2026-01-01", "2026-03-01"])
def test_the_api_versions_of_the_sdks_in_use_are_served(env, version):
    client, vm, capture = env
    assert client.put(f"{capture.arm_id}?api-version={version}", json=capture_body(vm)).status_code == 201
    assert client.post(f"{capture.arm_id}/queryStatus?api-version={version}").status_code == 200


@pytest.mark.parametrize("version", ["2019-01-01", "2026-01-01-preview", "2099-01-01", "latest"])
def test_any_other_api_version_is_refused_naming_the_supported_ones(env, version):
    client, vm, capture = env
    for response in (client.put(f"{capture.arm_id}?api-version={version}", json=capture_body(vm)),
                     client.get(f"{capture.arm_id}?api-version={version}"),
                     client.get(f"{capture.watcher_path}/packetCaptures?api-version={version}")):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "InvalidApiVersionParameter" and error["target"] == "api-version"
        assert version in error["message"] and all(v in error["message"] for v in SUPPORTED_API_VERSIONS)
    assert client.get(capture.arm_id).json()["error"]["code"] == "MissingApiVersionParameter"
