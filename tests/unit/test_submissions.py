"""The queue submission contract: the published JSON Schema is the models', names match in
ARM's casing rules, and a Celery task message carries the same submission."""

import json
from pathlib import Path

import jsonschema
import pytest

from shared.errors import InvalidField, PayloadTooLarge
from shared.submissions import MAX_SUBMISSION_BYTES, SUBMIT_TASK, contract_schema, submission_of

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkWatchers/nw/"
           "packetCaptures/pc1")
PROPERTIES = {"target": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
              "storageLocation": {"filePath": "/var/captures/pc1.cap"}}


def test_the_published_schema_is_the_contracts_and_accepts_what_the_intake_accepts():
    published = json.loads((ROOT / "docs" / "schemas" / "capture-submission.v1.json").read_text())
    assert published == json.loads(json.dumps(contract_schema())), "regenerate docs/schemas from shared/submissions.py"
    validator = jsonschema.Draft202012Validator(published)
    validator.validate({"id": CAPTURE, "properties": PROPERTIES})
    validator.validate({"subscriptionId": "s1", "resourceGroupName": "rg", "networkWatcherName": "nw",
                        "packetCaptureName": "pc1", "properties": PROPERTIES})
    for wrong in ({"properties": PROPERTIES}, {"id": CAPTURE, "properties": {**PROPERTIES, "fileCount": 1}},
                  {"id": CAPTURE, "properties": PROPERTIES, "extra": 1}):
        assert list(validator.iter_errors(wrong)), wrong


def test_names_match_in_any_case_and_both_ways_of_naming_the_capture_agree():
    by_id = submission_of(json.dumps({"ID": CAPTURE, "Properties": PROPERTIES}).encode(), None)
    by_path = submission_of(json.dumps({"SubscriptionId": "s1", "resourcegroupname": "rg",
                                        "networkWatcherName": "nw", "packetCaptureName": "pc1",
                                        "properties": PROPERTIES}).encode(), None)
    assert by_id.capture == by_path.capture and by_id.capture.arm_id == CAPTURE
    assert by_id.put_body() == {"properties": PROPERTIES}


def test_a_celery_task_message_carries_the_submission_as_keyword_arguments():
    body = json.dumps([[], {"id": CAPTURE, "properties": PROPERTIES}, {"callbacks": None}]).encode()
    assert submission_of(body, SUBMIT_TASK).capture.arm_id == CAPTURE
    with pytest.raises(InvalidField, match="task"):
        submission_of(body, "other.task")
    with pytest.raises(InvalidField, match="kwargs"):
        submission_of(json.dumps([[{"id": CAPTURE}], {}, {}]).encode(), SUBMIT_TASK)


@pytest.mark.parametrize("body, field", [
    (b"\xff not json", "body"),
    (json.dumps({"properties": PROPERTIES}).encode(), "name the capture"),
    (json.dumps({"id": CAPTURE, "packetCaptureName": "x", "properties": PROPERTIES}).encode(), "name the capture"),
    (json.dumps({"id": CAPTURE + "/instances/0", "properties": PROPERTIES}).encode(), "instance"),
    (json.dumps({"id": "/subscriptions/s1/nope", "properties": PROPERTIES}).encode(), "id"),
    (json.dumps({"id": CAPTURE, "properties": PROPERTIES, "propertys": {}}).encode(), "propertys"),
])
def test_a_malformed_submission_names_what_is_wrong(body, field):
    with pytest.raises(InvalidField) as refused:
        submission_of(body, None).capture
    assert field in str(refused.value) + json.dumps(refused.value.details())


def test_an_oversize_submission_is_refused_before_it_is_read():
    with pytest.raises(PayloadTooLarge):
        submission_of(b" " * (MAX_SUBMISSION_BYTES + 1), None)
