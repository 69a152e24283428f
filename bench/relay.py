"""The control worker's relay after an API process died with requests in the outbox: how long
`Control.relay` takes to send N abandoned capture requests to V new VM queues (real broker,
SQLite registry). Reference, in the same run: the same messages sent one at a time with a
wait for each confirm (`shared.broker.publish`, as agents and workers publish). Medians
(min-max); nothing is left in the temp dir, and the broker's virtual host goes with the run.
Usage: python -m bench.relay [--messages 1000] [--vms 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lab.abandoned import leave_requests
from lab.stack import temporary_vhost
from shared.broker import make_celery, publish
from shared.registry import Registry
from workers.control.worker import Control


def abandoned(folder: Path, messages: int, vms: int) -> Registry:
    """A registry whose outbox holds `messages` requests for `vms` new queues, their lease long over."""
    registry = Registry.from_url(f"sqlite:///{folder}/registry.db")
    leave_requests(registry, messages, [f"bench.relay.{secrets.token_hex(3)}.{n}" for n in range(vms)])
    return registry


def relayed(broker_url: str, registry: Registry, messages: int) -> float:
    control = Control(make_celery("bench-relay", broker_url), registry, heartbeat_seconds=10)
    began = time.perf_counter()
    assert control.relay() == messages
    elapsed = time.perf_counter() - began
    control.relayer.close()
    return elapsed


def one_confirm_each(broker_url: str, registry: Registry, messages: int) -> float:
    app = make_celery("bench-relay-reference", broker_url)
    began = time.perf_counter()
    pending = registry.take_abandoned(messages)
    for message in pending:
        publish(app, message.message.task.value, message.message.payload, message.message.queue)
        registry.messages_sent([message])
    elapsed = time.perf_counter() - began
    assert len(pending) == messages
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"relay": [], "reference": []}
    with temporary_vhost() as broker_url:
        for _ in range(args.runs):
            for name, send in (("relay", relayed), ("reference", one_confirm_each)):
                folder = Path(tempfile.mkdtemp(prefix="packetwatch-bench-relay-"))
                try:
                    registry = abandoned(folder, args.messages, args.vms)
                    results[name].append(send(broker_url, registry, args.messages))
                    registry.engine.dispose()
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
    print(f"relay of {args.messages} abandoned requests to {args.vms} new VM queues, {args.runs} runs, median (min-max):")
    for name, label in (("relay", "Control.relay (batches, one wait for the confirms each)"),
                        ("reference", "one publish and confirm at a time (reference)")):
        values = [seconds * 1000 for seconds in results[name]]
        print(f"  {label:56} {statistics.median(values):7.0f} ms ({min(values):.0f}-{max(values):.0f})")
    print(f"  reference/relay: {statistics.median(results['reference']) / statistics.median(results['relay']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
