"""Lightweight simulated agents, for benchmarks at a scale real agents do not fit on one
machine: each VM's durable queue is consumed (one connection for all of them), and each
publishes what a real agent publishes, through the same message contracts: heartbeats
(listing what it runs), Running on a capture request, Stopped (ManuallyStopped) on a stop
request. They capture nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from kombu import Connection, Consumer, Message

from lab.stack import Stack, relay_user, temporary_vhost
from shared.registry import Registry
from shared.broker import CONTROL_QUEUE, agent_queue_name, durable_queue, make_celery, publish
from shared.broker_identity import agent_user
from shared.messages import CaptureRequest, Heartbeat, StatusEvent, StopRequest, TaskName
from shared.arm import PcStatus, StopReason
from shared.resource_ids import VirtualMachineId
from shared.version import VERSION


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SimulatedAgents:
    def __init__(self, broker_url: str, vms: list[VirtualMachineId], heartbeat_seconds: float = 2.0) -> None:
        self.broker_url = broker_url
        self.vms = vms
        self.heartbeat_seconds = heartbeat_seconds
        self.running: dict[str, set[str]] = {vm.key: set() for vm in vms}  # VM -> run IDs
        self.by_queue = {agent_queue_name(vm): vm for vm in vms}
        self.app = make_celery("packetwatch-sim-agents", broker_url)
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._consume, name="sim-agents", daemon=True)

    def __enter__(self) -> "SimulatedAgents":
        self.thread.start()
        if not self.ready.wait(30):
            raise TimeoutError("simulated agents did not start consuming")
        self._beat()
        threading.Thread(target=self._beat_loop, name="sim-heartbeats", daemon=True).start()
        return self

    def _beat(self) -> None:
        for vm in self.vms:
            beat = Heartbeat(vm_id=vm.arm_id, version=VERSION, hostname=socket.gethostname(), interface="sim0",
                             reported_at=_now(), running=sorted(self.running[vm.key]))
            publish(self.app, TaskName.HEARTBEAT.value, beat.model_dump(mode="json"), CONTROL_QUEUE,
                    user_id=agent_user(vm))

    def _beat_loop(self) -> None:
        while not self.stopping.wait(self.heartbeat_seconds):
            self._beat()

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _consume(self) -> None:
        with Connection(self.broker_url) as conn:
            queues = [durable_queue(agent_queue_name(vm)) for vm in self.vms]
            with Consumer(conn.channel(), queues, callbacks=[self._on_message], accept=["json"], prefetch_count=200):
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except socket.timeout:
                        continue

    def _on_message(self, body: object, message: Message) -> None:
        task = message.headers.get("task")
        payload = body[0][0]  # Celery's message protocol 2: (args, kwargs, embed)
        vm = self.by_queue[message.delivery_info["routing_key"]]
        if task == TaskName.CAPTURE.value:
            request = CaptureRequest.model_validate(payload)
            self.running[vm.key].add(request.run_id)
            event = StatusEvent(capture_id=request.capture_id, run_id=request.run_id, status=PcStatus.RUNNING,
                                reported_at=_now(), capture_start_time=_now())
        elif task == TaskName.STOP.value:
            stop = StopRequest.model_validate(payload)
            for runs in self.running.values():
                runs.discard(stop.run_id)
            event = StatusEvent(capture_id=stop.capture_id, run_id=stop.run_id, status=PcStatus.STOPPED,
                                reported_at=_now(), stop_reason=StopReason.MANUALLY_STOPPED.value)
        else:
            message.ack()
            return
        publish(self.app, TaskName.STATUS.value, event.model_dump(mode="json"), CONTROL_QUEUE, user_id=agent_user(vm))
        message.ack()


@contextmanager
def simulated_fleet(vms: list[VirtualMachineId], workdir: Path, timeout: float = 60.0) -> Iterator[Stack]:
    """The whole stack (API, control worker, notifier) on a broker virtual host of its own and a
    SQLite registry in `workdir`, with simulated agents for `vms`, once every one has reported."""
    with temporary_vhost() as broker_url:
        stack = Stack(broker_url, f"sqlite:///{workdir}/registry.db", workdir)
        try:
            stack.start_api()
            registry = Registry.from_url(stack.database_url)
            with relay_user(broker_url) as relay, SimulatedAgents(relay, vms):
                deadline = time.monotonic() + timeout
                while len(registry.list_agents()) < len(vms):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{len(registry.list_agents())} of {len(vms)} simulated agents reported")
                    time.sleep(0.05)
                yield stack
        finally:
            stack.stop_all()
