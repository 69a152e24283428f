"""Capture requests over the broker against the same over HTTP, in one run on one stack: the
real API (`packetwatch serve`, its queue intake on), control worker, RabbitMQ and a SQLite
registry, with simulated agents that answer a capture request with Running.

Like for like: the same number of submitters, each sending one capture request and waiting
for its answer before the next (HTTP: a PUT on a kept-alive connection; queue: a publish
with a confirm and the answer on its reply queue), the same captures, the same agents.
Running is taken from the lifecycle events (packetwatch.events) for both, so neither side
pays for polling. The transports alternate run by run."""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from kombu import Connection, Queue

from cli.arm_client import API_VERSION
from lab.sim_agents import simulated_fleet
from lab.stack import Stack
from shared.lifecycle_events import EVENTS_EXCHANGE, RUNNING, binding
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.submissions import SUBMIT_EXCHANGE, SUBMIT_ROUTING_KEY

SUBSCRIPTION = "00000000-0000-0000-0000-00000000bea0"


class RunningTimes:
    """When each capture's running event arrived (its ce-capture, lower-cased)."""

    def __init__(self, broker_url: str) -> None:
        self.seen: dict[str, float] = {}
        self.broker_url = broker_url
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _listen(self) -> None:
        with Connection(self.broker_url) as connection:
            channel = connection.channel()
            EVENTS_EXCHANGE(channel).declare()
            queue = Queue("", EVENTS_EXCHANGE, exclusive=True, binding_arguments=binding(RUNNING, SUBSCRIPTION))
            bound = queue(channel)
            bound.declare()
            channel.basic_consume(bound.name, no_ack=True, callback=lambda message: self.seen.setdefault(
                message.headers["ce-capture"], time.perf_counter()))
            self.ready.set()
            while not self.stop.is_set():
                try:
                    connection.drain_events(timeout=0.2)
                except socket.timeout:
                    continue

    def wait_for(self, keys: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while any(key not in self.seen for key in keys):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(key not in self.seen for key in keys)} captures never Running")
            time.sleep(0.01)


def _body(capture: CaptureId, vm: VirtualMachineId) -> dict:
    return {"target": vm.arm_id, "timeLimitInSeconds": 600,
            "storageLocation": {"filePath": f"/var/captures/{capture.name}.cap"}}


def _http_submitter(stack: Stack, jobs: list[tuple[CaptureId, VirtualMachineId]]) -> list[tuple[float, float]]:
    times = []
    with httpx.Client(headers={"Authorization": f"Bearer {stack.token}"}, timeout=30) as client:
        for capture, vm in jobs:
            began = time.perf_counter()
            answer = client.put(f"{stack.api_url}{capture.arm_id}?api-version={API_VERSION}",
                                json={"properties": _body(capture, vm)})
            if answer.status_code != 201:
                raise RuntimeError(answer.text)
            times.append((began, time.perf_counter()))
    return times


def _queue_submitter(stack: Stack, jobs: list[tuple[CaptureId, VirtualMachineId]]) -> list[tuple[float, float]]:
    times = []
    with Connection(stack.broker_url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        reply_to = channel.queue_declare(queue="", exclusive=True).queue
        answers: list = []
        channel.basic_consume(reply_to, no_ack=True, callback=answers.append)
        for capture, vm in jobs:
            began = time.perf_counter()
            correlation_id = str(uuid.uuid4())
            channel.basic_publish(channel.prepare_message(
                json.dumps({"id": capture.arm_id, "properties": _body(capture, vm)}).encode(),
                content_type="application/json",
                properties={"reply_to": reply_to, "correlation_id": correlation_id, "message_id": correlation_id,
                            "delivery_mode": 2}, headers={"authorization": f"Bearer {stack.token}"}),
                exchange=SUBMIT_EXCHANGE.name, routing_key=SUBMIT_ROUTING_KEY)
            while not answers:
                connection.drain_events(timeout=30)
            answer = json.loads(answers.pop().body)
            if answer["status"] != 201:
                raise RuntimeError(answer)
            times.append((began, time.perf_counter()))
    return times


def one_run(stack: Stack, transport: str, vms: list[VirtualMachineId], captures: int, submitters: int,
            running: RunningTimes) -> dict[str, float]:
    run = secrets.token_hex(3)
    jobs = [(CaptureId(SUBSCRIPTION, "bench-rg", "bench-watcher", f"{transport}-{run}-{index}"),
             vms[index % len(vms)]) for index in range(captures)]
    shares = [jobs[index::submitters] for index in range(submitters)]
    submit = _http_submitter if transport == "http" else _queue_submitter
    began = time.perf_counter()
    with ThreadPoolExecutor(submitters) as pool:
        timed = [pair for share in pool.map(lambda share: submit(stack, share), shares) for pair in share]
    answered = time.perf_counter() - began
    keys = [capture.key for capture, _ in jobs]
    running.wait_for(keys)
    started = {capture.key: pair[0] for (capture, _), pair in zip([job for share in shares for job in share], timed)}
    to_running = sorted((running.seen[key] - started[key]) * 1000 for key in keys)
    answers = sorted((end - start) * 1000 for start, end in timed)
    return {"rate": captures / answered, "answer_p50": _pct(answers, 0.5), "answer_p99": _pct(answers, 0.99),
            "running_p50": _pct(to_running, 0.5), "running_p99": _pct(to_running, 0.99)}


def _pct(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--captures", type=int, default=300, help="captures per run and transport")
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--vms", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    vms = [VirtualMachineId(SUBSCRIPTION, "bench-rg", f"qvm{index:03d}") for index in range(args.vms)]
    results: dict[str, list[dict[str, float]]] = {"http": [], "queue": []}
    try:
        with simulated_fleet(vms, workdir) as stack:
            running = RunningTimes(stack.broker_url)
            one_run(stack, "http", vms, 20, 2, running)  # warm both paths up
            one_run(stack, "queue", vms, 20, 2, running)
            for _ in range(args.runs):
                for transport in ("http", "queue"):
                    results[transport].append(one_run(stack, transport, vms, args.captures, args.submitters,
                                                      running))
            running.stop.set()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"capture submissions: {args.captures} captures per run over {args.vms} simulated agents, "
          f"{args.submitters} submitters each awaiting its answer; one API process (its queue intake on), control "
          f"worker, RabbitMQ, SQLite registry; {args.runs} runs each, alternating; median (min-max)")
    print("  reference: HTTP PUT on kept-alive httpx connections (the ARM route)")
    for key, label, unit in (("rate", "submissions answered per second", "/s"),
                             ("answer_p50", "submission -> answer p50", " ms"),
                             ("answer_p99", "submission -> answer p99", " ms"),
                             ("running_p50", "submission -> Running event p50", " ms"),
                             ("running_p99", "submission -> Running event p99", " ms")):
        cells = []
        for transport in ("http", "queue"):
            values = [run[key] for run in results[transport]]
            cells.append(f"{transport} {statistics.median(values):8.1f}{unit} ({min(values):.1f}-{max(values):.1f})")
        http, queue = (statistics.median(run[key] for run in results[t]) for t in ("http", "queue"))
        print(f"  {label:34} {cells[0]:34} {cells[1]:34} queue/http {queue / http:.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
