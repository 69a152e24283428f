"""Control plane at fleet size: how many agent messages per second one control worker applies.
The control queue is pre-filled with what 10,000 simulated agents send (a heartbeat each,
several rounds, and Running then Stopped for captures on a tenth of them: the same message
contracts real agents use), then the worker (`packetwatch control run`, a real process on a
real broker and database) is started and timed until the queue is empty and the registry
shows every message applied. Reference, in the same run: a plain kombu consumer that only
takes and acknowledges the same number of messages. SQLite and PostgreSQL; on PostgreSQL also
two control workers side by side. Medians (min-max); nothing is left in the temp dir.
Usage: python -m bench.control_throughput [--agents 10000] [--rounds 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from kombu import Connection, Consumer

from bench.registry_list import database
from lab.stack import Stack, free_port, relay_user, temporary_vhost
from shared.arm import PacketCaptureParameters, PcStatus, StopReason
from shared.broker import CONTROL_QUEUE, durable_queue, make_celery
from shared.broker_identity import agent_user
from shared.messages import Heartbeat, StatusEvent, TaskName
from shared.registry import Registry
from shared.registry_schema import agents, captures
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.version import VERSION

SUBSCRIPTION = "00000000-0000-0000-0000-0000000bench"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def messages(vms: list[VirtualMachineId], rounds: int, captured: list[tuple[CaptureId, VirtualMachineId]],
             runs: dict[str, str]) -> list[tuple[str, dict, str]]:
    """What the fleet sends, each with its agent's broker user: `rounds` heartbeats from each
    VM, and Running then Stopped for each capture, interleaved with them."""
    sent: list[tuple[str, dict, str]] = []
    for round_ in range(rounds):
        for vm in vms:
            beat = Heartbeat(vm_id=vm.arm_id, version=VERSION, hostname=vm.name, interface="sim0",
                             reported_at=_now(), location="westeurope")
            sent.append((TaskName.HEARTBEAT.value, beat.model_dump(mode="json"), agent_user(vm)))
        if round_ < 2:
            for capture, vm in captured:
                status = PcStatus.RUNNING if round_ == 0 else PcStatus.STOPPED
                event = StatusEvent(capture_id=capture.arm_id, run_id=runs[capture.key], status=status,
                                    reported_at=_now(), capture_start_time=_now(),
                                    stop_reason=StopReason.MANUALLY_STOPPED if round_ else None)
                sent.append((TaskName.STATUS.value, event.model_dump(mode="json"), agent_user(vm)))
    return sent


def prefill(broker_url: str, sent: list[tuple[str, dict, str]]) -> None:
    """Publish as the agents would (a relay the broker lets stamp each message with its VM's
    agent user), so the control worker checks every sender as it does a real fleet's."""
    with relay_user(broker_url) as relay:
        app = make_celery("packetwatch-bench-fleet", relay)
        app.conf.broker_transport_options = {}  # the pre-fill itself need not wait for each confirm
        app.conf.task_send_sent_event = False
        with app.producer_or_acquire() as producer:
            for task, payload, sender in sent:
                app.send_task(task, args=[payload], queue=durable_queue(CONTROL_QUEUE), routing_key=CONTROL_QUEUE,
                              producer=producer, user_id=sender)


def queue_state(broker_url: str) -> tuple[int, int]:
    """(messages ready, consumers) of the control queue."""
    with Connection(broker_url) as conn:
        declared = durable_queue(CONTROL_QUEUE)(conn.channel()).queue_declare(passive=True)
        return declared.message_count, declared.consumer_count


def queue_depth(broker_url: str) -> int:
    return queue_state(broker_url)[0]


def plain_consumer(broker_url: str, count: int) -> float:
    """Take and acknowledge `count` messages with kombu, nothing else: the broker's own pace."""
    taken = 0
    began = time.perf_counter()
    with Connection(broker_url) as conn:
        def take(_body, message) -> None:  # type: ignore[no-untyped-def]
            nonlocal taken
            message.ack()
            taken += 1

        with Consumer(conn, queues=[durable_queue(CONTROL_QUEUE)], callbacks=[take], prefetch_count=256):
            while taken < count:
                conn.drain_events(timeout=30)
    return count / (time.perf_counter() - began)


def one_run(kind: str, workers: int, agent_count: int, rounds: int, workdir: Path) -> dict[str, float]:
    vms = [VirtualMachineId(SUBSCRIPTION, "bench-rg", f"vm-{n}") for n in range(agent_count)]
    captured = [CaptureId(SUBSCRIPTION, "bench-rg", "bench-nw", f"pc-{n}") for n in range(agent_count // 10)]
    with temporary_vhost() as broker_url, database(kind, workdir) as database_url:
        registry = Registry.from_url(database_url)
        registry.import_captures([(capture, PacketCaptureParameters.model_validate(
            {"target": vms[n * 10].arm_id, "storageLocation": {"filePath": f"/var/captures/{capture.name}.cap"}}),
            _now(), PcStatus.NOT_STARTED) for n, capture in enumerate(captured)])
        with registry.engine.connect() as conn:
            runs = dict(conn.execute(captures.select().with_only_columns(captures.c.key, captures.c.run_id)).all())
        sent = messages(vms, rounds, [(capture, vms[n * 10]) for n, capture in enumerate(captured)], runs)
        prefill(broker_url, sent)
        plain = plain_consumer(broker_url, len(sent))  # the reference takes this copy
        prefill(broker_url, sent)
        stack = Stack(broker_url, database_url, workdir)
        for n in range(workers):
            stack.spawn(f"control-{n}", "control", "run", "--metrics-port", str(free_port()),
                        env={"PACKETWATCH_HEARTBEAT_SECONDS": "3600", "PACKETWATCH_LOG_LEVEL": "WARNING"})
        try:
            deadline = time.monotonic() + 600
            final = PcStatus.STOPPED if rounds > 1 else PcStatus.RUNNING  # one round sends Running only
            while (left := queue_depth(broker_url)) == len(sent):  # timed from the first message taken,
                if time.monotonic() > deadline:                    # not from the worker's start-up
                    raise TimeoutError("no control worker took a message in 600 s")
                time.sleep(0.005)
            began = time.perf_counter()
            consumers = 0  # the set-up as labelled: every worker consuming while the queue drains
            while (state := queue_state(broker_url))[0] > 0 or \
                    not _all_applied(registry, len(vms), len(captured), final):
                consumers = max(consumers, state[1])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{state[0]} messages still queued after 600 s")
                time.sleep(0.05)
            drained = time.perf_counter() - began
            alive = sum(stack.processes[f"control-{n}"].poll() is None for n in range(workers))
            if consumers != workers or alive != workers:
                raise RuntimeError(f"{workers} control workers were to run: {consumers} consumed, {alive} alive")
        finally:
            for n in range(workers):
                stack.stop(f"control-{n}")
            registry.engine.dispose()
        return {"control": left / drained, "plain": plain, "messages": len(sent), "consumers": consumers}


def _all_applied(registry: Registry, agent_count: int, captured: int, final: PcStatus) -> bool:
    with registry.engine.connect() as conn:
        seen = conn.execute(agents.select().with_only_columns(agents.c.vm_key)).all()
        done = conn.execute(captures.select().with_only_columns(captures.c.key).where(
            captures.c.status == final.value)).all()
    return len(seen) == agent_count and len(done) == captured


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--setups", default="sqlite:1,postgresql:1,postgresql:2")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for setup in args.setups.split(","):
            kind, workers = setup.split(":")
            results[setup] = [one_run(kind, int(workers), args.agents, args.rounds, workdir) for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"control throughput: {args.agents:,} simulated agents, {args.rounds} heartbeats each plus Running and "
          f"Stopped for {args.agents // 10:,} captures, pre-filled; messages/s until all applied, median (min-max), "
          f"{args.runs} runs; each stamped with its VM's agent user and its sender checked, as from a real fleet; "
          "reference: a plain kombu consumer taking the same messages")
    for setup, runs in results.items():
        kind, workers = setup.split(":")
        control = [run["control"] for run in runs]
        plain = [run["plain"] for run in runs]
        seen = min(run["consumers"] for run in runs)
        print(f"  {kind:10} {workers} worker(s) ({seen} consuming in every run): "
              f"{statistics.median(control):7.0f} msg/s ({min(control):.0f}-"
              f"{max(control):.0f})   plain kombu {statistics.median(plain):7.0f} msg/s   "
              f"ratio {statistics.median(control) / statistics.median(plain):.2f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
