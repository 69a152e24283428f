"""Queue submissions: the contract of a capture request put on the broker by any AMQP 0-9-1
or Celery client, and of its answer (docs/queue-submissions.md; the JSON Schema is
docs/schemas/capture-submission.v1.json, written from these models).

    exchange packetwatch.submissions (direct, durable)
      └─ routing key "capture" → queue packetwatch.submissions (quorum)
    exchange packetwatch.submissions.rejected (fanout, durable)
      └─ queue packetwatch.submissions.rejected (quorum): every refused message, with why

A submission names its capture by resource ID (`id`), or by ARM's path parameters
(`subscriptionId`, `resourceGroupName`, `networkWatcherName`, `packetCaptureName`), and
holds `properties` as the ARM PUT body does; names match in any case, as ARM's. A Celery
client sends the same fields as the keyword arguments of the task `packetwatch.submit_capture`.
The capture's name is the idempotency key: the same submission twice makes one capture.
"""

from __future__ import annotations

import json
from typing import Any

from kombu import Exchange, Queue
from pydantic import Field, ValidationError, model_validator

from shared.arm import ArmModel, ArmRequestModel
from shared.errors import InvalidField, PayloadTooLarge
from shared.resource_ids import CaptureId

CONTRACT = "packetwatch.capture-submission.v1"
SUBMIT_TASK = "packetwatch.submit_capture"
SUBMIT_ROUTING_KEY = "capture"
MAX_SUBMISSION_BYTES = 1024 * 1024  # as the API's PUT body
DELIVERY_LIMIT = 10  # deliveries of one message (the intake failing on it) before the broker dead-letters it

SUBMIT_EXCHANGE = Exchange("packetwatch.submissions", type="direct", durable=True)
REJECTED_EXCHANGE = Exchange("packetwatch.submissions.rejected", type="fanout", durable=True)
SUBMIT_QUEUE = Queue("packetwatch.submissions", SUBMIT_EXCHANGE, routing_key=SUBMIT_ROUTING_KEY, durable=True,
                     queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT,
                                      "x-dead-letter-exchange": REJECTED_EXCHANGE.name})
REJECTED_QUEUE = Queue("packetwatch.submissions.rejected", REJECTED_EXCHANGE, durable=True,
                       queue_arguments={"x-queue-type": "quorum"})
# Headers of a dead-lettered submission: why it was refused.
REASON_HEADERS = ("x-packetwatch-status", "x-packetwatch-error-code", "x-packetwatch-error-message")


class CaptureSubmission(ArmRequestModel):
    id: str | None = None
    subscription_id: str | None = Field(default=None, alias="subscriptionId")
    resource_group_name: str | None = Field(default=None, alias="resourceGroupName")
    network_watcher_name: str | None = Field(default=None, alias="networkWatcherName")
    packet_capture_name: str | None = Field(default=None, alias="packetCaptureName")
    properties: dict[str, Any]

    @model_validator(mode="after")
    def _one_name(self) -> "CaptureSubmission":
        parts = (self.subscription_id, self.resource_group_name, self.network_watcher_name, self.packet_capture_name)
        if (self.id is None) == (not any(parts)) or (self.id is None and not all(parts)):
            raise ValueError("name the capture by id, or by subscriptionId, resourceGroupName, networkWatcherName "
                             "and packetCaptureName")
        return self

    @property
    def capture(self) -> CaptureId:
        """The capture named; InvalidField for a malformed ID."""
        if self.id is not None:
            capture = CaptureId.parse(self.id, "id")
        else:
            capture = CaptureId.parse(f"/subscriptions/{self.subscription_id}/resourceGroups/"
                                      f"{self.resource_group_name}/providers/Microsoft.Network/networkWatchers/"
                                      f"{self.network_watcher_name}/packetCaptures/{self.packet_capture_name}",
                                      "packetCaptureName")
        if capture.instance is not None:
            raise InvalidField("id", self.id, "is one scale set instance's part; submit the scale set capture")
        return capture

    def put_body(self) -> dict[str, Any]:
        """What a PUT of this capture would carry."""
        return {"properties": self.properties}


class SubmissionAnswer(ArmModel):
    """The one answer to a submission with reply_to: the capture as GET returns it (status 201
    new, 200 already there), or ARM's error with every bad field."""

    contract: str = CONTRACT
    status: int
    message_id: str | None = Field(default=None, alias="messageId")
    capture: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def submission_of(body: bytes, celery_task: str | None) -> CaptureSubmission:
    """The submission a message body holds: its JSON, or for a Celery task message (protocol 2,
    `[args, kwargs, embed]`) its keyword arguments. InvalidField (or PayloadTooLarge) says why not."""
    if len(body) > MAX_SUBMISSION_BYTES:
        raise PayloadTooLarge(f"a submission may hold {MAX_SUBMISSION_BYTES} bytes; this one holds {len(body)}")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", body[:60].decode(errors="replace"), f"is not JSON: {exc}") from None
    if celery_task is not None:
        if celery_task != SUBMIT_TASK:
            raise InvalidField("task", celery_task, f"is not a task this queue takes; send {SUBMIT_TASK}")
        if not (isinstance(document, list) and len(document) == 3 and document[0] == [] and
                isinstance(document[1], dict)):
            raise InvalidField("kwargs", None, "give the submission as keyword arguments only (send_task(name, "
                                               "kwargs={...}))")
        document = document[1]
    try:
        return CaptureSubmission.model_validate(document)
    except ValidationError as exc:
        raise InvalidField.from_validation(exc, known_names=CaptureSubmission.model_json_schema(
            by_alias=True)["properties"]) from None


def contract_schema() -> dict[str, Any]:
    """The JSON Schema of a submission (docs/schemas/capture-submission.v1.json): its
    `properties` are a PUT's (PacketCaptureParameters), and its answer is described beside it."""
    from shared.arm import PacketCaptureParameters

    template = "#/$defs/{model}"
    schema = CaptureSubmission.model_json_schema(by_alias=True, ref_template=template)
    parameters = PacketCaptureParameters.model_json_schema(by_alias=True, ref_template=template)
    answer = SubmissionAnswer.model_json_schema(by_alias=True, ref_template=template)
    definitions = {**parameters.pop("$defs", {}), "PacketCaptureParameters": parameters,
                   "SubmissionAnswer": answer}
    schema["properties"]["properties"] = {"$ref": "#/$defs/PacketCaptureParameters",
                                          "description": "as the ARM PUT body's properties"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": CONTRACT, **schema,
            "title": "A PacketWatch capture submission (queue packetwatch.submissions)",
            "description": __doc__, "oneOf": [{"required": ["id"]}, {"required": [
                "subscriptionId", "resourceGroupName", "networkWatcherName", "packetCaptureName"]}],
            "$defs": {**schema.get("$defs", {}), **definitions}}
