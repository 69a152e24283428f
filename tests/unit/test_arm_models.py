import json
from pathlib import Path

import pytest

from shared.arm import (
    PacketCapture, PacketCaptureListResult, PacketCaptureParameters, PacketCaptureQueryStatusResult,
    PacketCaptureResult,
)
from shared.capture_spec import parse_body
from shared.errors import InvalidField

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "arm-examples"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def _round_trip(model, body: dict) -> dict:
    return model.model_validate(body).model_dump(mode="json", by_alias=True, exclude_unset=True)


@pytest.mark.parametrize("name, status, model", [
    ("NetworkWatcherPacketCaptureCreate.json", "201", PacketCaptureResult),
    ("NetworkWatcherPacketCaptureGet.json", "200", PacketCaptureResult),
    ("NetworkWatcherPacketCapturesList.json", "200", PacketCaptureListResult),
    ("NetworkWatcherPacketCaptureQueryStatus.json", "200", PacketCaptureQueryStatusResult),
    ("NetworkWatcherPacketCaptureQueryStatus.json", "202", PacketCaptureQueryStatusResult),
])
def test_every_example_response_parses_and_serializes_back_to_the_same_json(name, status, model):
    body = _example(name)["responses"][status]["body"]
    assert _round_trip(model, body) == body


def test_the_create_example_request_round_trips():
    body = _example("NetworkWatcherPacketCaptureCreate.json")["parameters"]["parameters"]
    assert _round_trip(PacketCapture, body) == body


def test_defaults_are_arms():
    params = PacketCaptureParameters.model_validate({"target": "t", "storageLocation": {"filePath": "/var/captures/a.cap"}})
    dumped = params.to_arm()
    assert dumped["bytesToCapturePerPacket"] == 0
    assert dumped["totalBytesPerSession"] == 1073741824
    assert dumped["timeLimitInSeconds"] == 18000
    assert dumped["filters"] == []


@pytest.mark.parametrize("field, value, path", [
    ("timeLimitInSeconds", 18001, "properties.timeLimitInSeconds"),
    ("timeLimitInSeconds", -1, "properties.timeLimitInSeconds"),
    ("totalBytesPerSession", 4294967296, "properties.totalBytesPerSession"),
    ("bytesToCapturePerPacket", "lots", "properties.bytesToCapturePerPacket"),
    ("filters", [{"protocol": "ICMP"}], "properties.filters[0].protocol"),
])
def test_out_of_range_values_name_their_field(field, value, path):
    body = {"properties": {"target": "t", "storageLocation": {"filePath": "/var/captures/a.cap"}, field: value}}
    with pytest.raises(InvalidField) as error:
        parse_body(body)
    assert error.value.field == path


def test_protocol_is_accepted_in_any_case_and_written_as_arm_spells_it():
    body = {"properties": {"target": "t", "storageLocation": {}, "filters": [{"protocol": "tcp"}, {"protocol": "any"}]}}
    assert [f["protocol"] for f in parse_body(body).to_arm()["properties"]["filters"]] == ["TCP", "Any"]
