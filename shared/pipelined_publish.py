"""Publishing a batch with one wait for the broker's confirms (RabbitMQ publisher confirms,
pipelined): every message of the batch is sent, then the acks are read as they come, so a
batch costs about one round trip instead of one per message, and the publishing thread
wakes once per batch instead of once per message.

The broker numbers every basic.publish on a channel in confirm mode from 1; acks name those
numbers (one, or every number up to it). The channel here counts its own publishes, so a
message is confirmed exactly when the broker acked its number. Nothing is retried here (a
lost connection would renumber): what is not confirmed is the caller's to send again."""

from __future__ import annotations

from typing import Any
import time
from collections.abc import Callable
from dataclasses import dataclass

from amqp.exceptions import AMQPError
from celery import Celery
from kombu import Connection, Producer
from kombu.exceptions import OperationalError

from shared.broker import durable_queue
from shared.messages import Outgoing

CONFIRM_TIMEOUT = 10.0  # seconds to wait for a batch's confirms before the connection is given up


@dataclass(frozen=True)
class Published:
    confirmed: list[bool]  # per message, in order
    failure: str | None = None  # why the others were not confirmed


class _ConfirmChannel:
    """One channel in confirm mode that knows the number of each of its publishes.

    Its task events go through a dispatcher of its own that does not buffer while offline:
    Celery's default one swallows any error raised while it publishes an event, and py-amqp
    reports a channel the broker closed on the next publish, which may be an event's. The
    swallowed close would leave a silently reopened channel, not in confirm mode, behind."""

    def __init__(self, app: Celery, connection: Connection) -> None:
        self.channel = connection.channel()
        self.channel.confirm_select()
        self.events = app.events.Dispatcher(channel=self.channel, enabled=False, buffer_while_offline=False)
        self.sent = 0
        self.unconfirmed: set[int] = set()
        self.refused: set[int] = set()
        self.declared: set[str] = set()
        self.channel.events["basic_ack"].add(self._acked)
        self.channel.events["basic_nack"].add(self._nacked)
        self.channel.basic_publish = self._numbered(self.channel.basic_publish)

    def _numbered(self, publish: Callable) -> Callable:
        def numbered(*args: Any, **kwargs: Any) -> Any:
            self.sent += 1
            self.unconfirmed.add(self.sent)
            return publish(*args, **kwargs)
        return numbered

    def _settled(self, tag: int, multiple: bool) -> set[int]:
        return {number for number in self.unconfirmed if number <= tag} if multiple else {tag} & self.unconfirmed

    def _acked(self, tag: int, multiple: bool) -> None:
        self.unconfirmed -= self._settled(tag, multiple)

    def _nacked(self, tag: int, multiple: bool) -> None:
        settled = self._settled(tag, multiple)
        self.unconfirmed -= settled
        self.refused |= settled

    def confirmed(self, number: int) -> bool:
        return 0 < number <= self.sent and number not in self.unconfirmed and number not in self.refused


class PipelinedPublisher:
    """Sends task messages as Celery does (same body, headers and task events), on one
    connection of its own, and waits for a whole batch's confirms at once. One thread only."""

    def __init__(self, app: Celery, confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        self.app = app
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel: _ConfirmChannel | None = None

    def publish(self, messages: list[Outgoing]) -> Published:
        numbers: list[int] = []
        try:
            channel = self._open()
            producer = Producer(channel.channel)
            for message in messages:
                queue = durable_queue(message.queue)
                if message.queue not in channel.declared:  # without waiting: the channel keeps the order
                    queue(channel.channel).declare(nowait=True)
                    channel.declared.add(message.queue)
                numbers.append(channel.sent + 1)  # the message's own publish comes first, then its task event
                self.app.send_task(message.task.value, args=[message.payload], queue=queue, routing_key=message.queue,
                                   producer=producer, event_dispatcher=channel.events, retry=False, declare=[])
            deadline = time.monotonic() + self.confirm_timeout
            while channel.unconfirmed and time.monotonic() < deadline:
                self._connection.drain_events(timeout=max(0.001, deadline - time.monotonic()))  # type: ignore[union-attr]
        except (OperationalError, OSError, AMQPError) as exc:
            return self._failed(numbers, messages, f"{type(exc).__name__}: {exc}")
        confirmed = [channel.confirmed(number) for number in numbers]
        if channel.unconfirmed:  # no answer in time: this connection is not to be trusted any more
            return self._failed(numbers, messages, f"no confirm within {self.confirm_timeout:.0f} s")
        return Published(confirmed, None if all(confirmed) else "the broker refused some messages (basic.nack)")

    def _open(self) -> _ConfirmChannel:
        if self._channel is None:
            connection = self.app.connection_for_write(transport_options={"confirm_publish": False})
            self._connection = connection
            connection.ensure_connection(max_retries=0)  # fail now: the caller retries
            self._channel = _ConfirmChannel(self.app, connection)
        return self._channel

    def _failed(self, numbers: list[int], messages: list[Outgoing], reason: str) -> Published:
        channel = self._channel
        confirmed = [channel is not None and channel.confirmed(number) for number in numbers]
        confirmed += [False] * (len(messages) - len(confirmed))
        self.close()
        return Published(confirmed, reason)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped either way
                pass
