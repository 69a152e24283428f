"""`packetwatch queue submit` and `packetwatch queue events`: a capture request put on the
broker's intake (shared/submissions.py) and its answer awaited; the lifecycle events
(shared/lifecycle_events.py) printed as they come. They speak to the broker
(PACKETWATCH_BROKER_URL or --broker-url), as any AMQP client of PacketWatch does."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from typing import Any

from kombu import Connection, Queue

from cli.arm_client import ApiError
from cli.az.commands import create_parameters
from cli.az.connection import subscription_of
from cli.capture_body import CliError
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_TIME_LIMIT_SECONDS
from shared.config import Settings
from shared.lifecycle_events import EVENTS_EXCHANGE, binding
from shared.resource_ids import CaptureId
from shared.submissions import CONTRACT, SUBMIT_EXCHANGE, SUBMIT_ROUTING_KEY


def _broker(broker_url: str | None) -> Connection:
    return Connection(broker_url or Settings().broker_url, connect_timeout=10,
                      transport_options={"confirm_publish": True})


def submit_packet_capture(resource_group_name: str, capture_name: str, vm: str | None = None,
                          target: str | None = None, target_type: str | None = None,
                          storage_account: str | None = None, storage_path: str | None = None,
                          file_path: str | None = None, capture_size: int = 0,
                          capture_limit: int = DEFAULT_TOTAL_BYTES_PER_SESSION,
                          time_limit: int = MAX_TIME_LIMIT_SECONDS, filters: str | None = None,
                          include: list[str] | None = None, exclude: list[str] | None = None,
                          continuous_capture: str | None = None, capture_settings: list[str] | None = None,
                          local_path: str | None = None, look_back_seconds: int | None = None,
                          watcher: str = "PacketWatch", subscription: str | None = None, token: str | None = None,
                          broker_url: str | None = None, message_id: str | None = None,
                          timeout: float = 30.0) -> dict[str, Any]:
    """Put a capture request on the intake and print the capture as the answer holds it."""
    sub = subscription_of(subscription)
    parameters = create_parameters(sub, resource_group_name, locals())
    capture = CaptureId(sub, resource_group_name, watcher, capture_name)
    body = json.dumps({"id": capture.arm_id, "properties": parameters.to_arm()}).encode()
    token = token or os.environ.get("PACKETWATCH_TOKEN")
    correlation_id = str(uuid.uuid4())
    answers: list[dict] = []
    with _broker(broker_url) as connection:
        channel = connection.channel()
        reply_to = channel.queue_declare(queue="", exclusive=True, auto_delete=True).queue
        channel.basic_consume(reply_to, no_ack=True, callback=lambda message: answers.append(
            json.loads(message.body)) if message.properties.get("correlation_id") == correlation_id else None)
        # Without a token, the broker user this connection logs in as (RabbitMQ vouches for it).
        identity = {"headers": {"authorization": f"Bearer {token}"}} if token else \
            {"user_id": connection.userid}
        channel.basic_publish(channel.prepare_message(
            body, content_type="application/json", properties={
                "reply_to": reply_to, "correlation_id": correlation_id, "message_id": message_id or correlation_id,
                "delivery_mode": 2, "app_id": f"packetwatch-cli@{socket.gethostname()}", "type": CONTRACT,
                **({"user_id": identity["user_id"]} if "user_id" in identity else {})},
            headers=identity.get("headers")), exchange=SUBMIT_EXCHANGE.name, routing_key=SUBMIT_ROUTING_KEY)
        deadline = time.monotonic() + timeout
        while not answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CliError(f"no answer within {timeout:.0f} s (is `packetwatch serve` running with the queue "
                               "intake on?); the submission stays queued")
            try:
                connection.drain_events(timeout=min(left, 1.0))
            except socket.timeout:
                continue
    answer = answers[0]
    if answer.get("error"):
        error = answer["error"]
        raise ApiError(answer["status"], error.get("code", "Error"), error.get("message", ""))
    return answer["capture"]


def show_events(subscription: str | None = None, vm: str | None = None, resource_group_name: str | None = None,
                watcher: str = "PacketWatch", capture_name: str | None = None, event_type: str | None = None,
                count: int = 0, timeout: float = 0, broker_url: str | None = None) -> None:
    """Print the lifecycle events that match, one CloudEvent (structured JSON) a line, until
    `count` have come or `timeout` seconds pass (0: until interrupted)."""
    subscription = subscription or os.environ.get("PACKETWATCH_SUBSCRIPTION")  # none: every subscription's
    capture = None
    if capture_name is not None:
        if not resource_group_name:
            raise CliError("-n names a capture of the watcher in -g: give --resource-group/-g")
        capture = CaptureId(subscription_of(subscription), resource_group_name, watcher, capture_name).arm_id
    shown = 0
    deadline = time.monotonic() + timeout if timeout else None
    with _broker(broker_url) as connection:
        channel = connection.channel()
        queue = Queue("", EVENTS_EXCHANGE, exclusive=True, auto_delete=True,
                      binding_arguments=binding(event_type, subscription, vm, capture))(channel)
        queue.declare()

        def printed(message: Any) -> None:
            nonlocal shown
            headers = message.headers or {}
            event = {key[3:]: value for key, value in headers.items() if key.startswith("ce-")}
            event["data"] = json.loads(message.body)
            print(json.dumps(event, sort_keys=True), flush=True)
            shown += 1

        channel.basic_consume(queue.name, no_ack=True, callback=printed)
        while not (count and shown >= count):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                connection.drain_events(timeout=min(left, 1.0) if left is not None else 1.0)
            except socket.timeout:
                continue
    if count and shown < count:
        print(f"packetwatch: {shown} of {count} events in {timeout:.0f} s", file=sys.stderr)
