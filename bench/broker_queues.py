"""Broker sizing for a fleet: every VM's agent has a durable quorum queue of its own, so the
broker holds one per VM. This declares N idle ones in a virtual host of its own and reports
the broker's memory per queue (Erlang's total, before and after), and how fast they were
declared. Reference, in the same run: N classic durable queues. The virtual hosts, with
their queues, go with the run.
Usage: python -m bench.broker_queues [--queues 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from kombu import Connection

from lab.stack import temporary_vhost
from shared.broker import QUEUE_ARGUMENTS


def broker_memory() -> int:
    out = subprocess.run(["rabbitmqctl", "-q", "eval", "erlang:memory(total)."], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return int(out.strip())


def declare(count: int, arguments: dict) -> tuple[float, float]:
    """KiB of broker memory per idle queue, and queues declared per second."""
    with temporary_vhost() as url:
        time.sleep(2)  # the new virtual host settles
        before = broker_memory()
        began = time.perf_counter()
        with Connection(url) as conn:
            channel = conn.channel()
            for index in range(count):
                channel.queue_declare(f"bench.agent.vm{index}", durable=True, auto_delete=False, arguments=arguments)
        rate = count / (time.perf_counter() - began)
        time.sleep(5)  # what declaring them left behind is collected
        return (broker_memory() - before) / count / 1024, rate


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", type=int, default=1000)
    args = parser.parse_args()
    quorum_kib, quorum_rate = declare(args.queues, QUEUE_ARGUMENTS)
    classic_kib, classic_rate = declare(args.queues, {"x-queue-type": "classic"})
    print(f"broker memory per idle agent queue, {args.queues} declared in a new virtual host:")
    print(f"  quorum (as PacketWatch declares them)  {quorum_kib:6.0f} KiB per queue, {quorum_rate:5.0f} declared/s; "
          f"10,000 VMs: {quorum_kib * 10_000 / 2**20:.2f} GiB")
    print(f"  classic durable (reference)            {classic_kib:6.0f} KiB per queue, {classic_rate:5.0f} declared/s")
    print(f"  quorum/classic memory per queue: {quorum_kib / classic_kib:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
