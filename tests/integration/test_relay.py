"""The control worker's relay, on the real broker and both databases: what API processes left
in the outbox (they died, or the broker failed them) reaches its queues once each, in
batches; what the broker does not take stays in the outbox for the next tick."""

import secrets
from datetime import datetime, timezone

import pytest

from lab.abandoned import leave_requests
from shared import outbox
from shared.broker import make_celery
from shared.messages import TaskName
from shared.registry import Registry
from tests.integration.conftest import queue_messages
from workers.control.worker import RELAY_BATCH, Control


@pytest.fixture
def abandoned(empty_database_url):
    """A registry holding 2.5 batches of messages whose sender died, for three queues."""
    registry = Registry.from_url(empty_database_url)
    queues = [f"test.relay.{secrets.token_hex(3)}.{n}" for n in range(3)]
    count = RELAY_BATCH * 5 // 2
    leave_requests(registry, count, queues)
    yield registry, queues, count
    registry.engine.dispose()


def test_everything_abandoned_is_relayed_in_one_tick_once_each_in_order(broker_url, abandoned):
    registry, queues, count = abandoned
    control = Control(make_celery("test-relay", broker_url), registry, heartbeat_seconds=10)
    try:
        assert control.relay() == count
        assert control.relay() == 0, "nothing is left to send"
    finally:
        control.relayer.close()
    with registry.engine.connect() as conn:
        assert outbox.lease_expired(conn, datetime(2100, 1, 1, tzinfo=timezone.utc), count) == [], "none kept"
    for n, queue in enumerate(queues):
        assert queue_messages(broker_url, queue) == [(TaskName.CAPTURE.value, {"index": index})
                                                     for index in range(n, count, 3)]


def test_what_the_broker_does_not_take_stays_in_the_outbox(abandoned):
    registry, _, count = abandoned
    control = Control(make_celery("test-relay", "amqp://guest:guest@127.0.0.1:1//"), registry, heartbeat_seconds=10)
    assert control.relay() == 0
    with registry.engine.connect() as conn:
        kept = outbox.lease_expired(conn, datetime(2100, 1, 1, tzinfo=timezone.utc), count + 1)
    assert len(kept) == count, "every message is kept, leased until the next try"
