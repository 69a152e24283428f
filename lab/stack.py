"""Run the whole PacketWatch stack as real processes on this machine: the API under
uvicorn, the control worker and one agent per lab VM, against the real broker."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator, Mapping

import httpx

from kombu import Connection

from cli.agent_enroll import BrokerAdmin, with_user
from cli.supervisor import Child, free_port
from lab.vms import LabVm
from shared.access import hash_token, new_token
from shared.broker import agent_queue_name, has_consumer
from shared.config import CONTROL_SIDE_ONLY
from shared.resource_ids import VirtualMachineId

log = logging.getLogger("packetwatch.lab")
START_TIMEOUT = 60.0
LAB_SUBSCRIPTION = "00000000-0000-0000-0000-00000000lab0"
LAB_SUBMITTER = "packetwatch-lab-submitter"  # a broker user granted queue submissions in the lab's subscription
# The lab's storage account (Azurite's), as captures name it.
STORAGE_ID = f"/subscriptions/{LAB_SUBSCRIPTION}/resourceGroups/lab-rg/providers/" \
             "Microsoft.Storage/storageAccounts/devstoreaccount1"


def wait_for_consumer(broker_url: str, queue: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not has_consumer(broker_url, queue):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody consumed {queue} within {timeout:.0f}s")
        time.sleep(0.2)


@contextmanager
def temporary_vhost(base_url: str = "amqp://guest:guest@127.0.0.1:5672") -> Iterator[str]:
    """A RabbitMQ virtual host of its own, removed afterwards: runs never see each other's queues."""
    name = f"packetwatch-{secrets.token_hex(4)}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True, timeout=60)
        yield f"{base_url}/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=60)


@contextmanager
def relay_user(broker_url: str) -> Iterator[str]:
    """A broker user that may publish as any agent (RabbitMQ's `impersonator` tag: its
    `user_id` is not checked against its own name), for simulated fleets that speak for
    thousands of VMs on one connection; removed afterwards. Returns its broker URL."""
    name, password = f"packetwatch-relay-{secrets.token_hex(4)}", secrets.token_hex(16)
    vhost = str(Connection(broker_url).info()["virtual_host"])
    for command in (["add_user", name, password], ["set_user_tags", name, "impersonator"],
                    ["set_permissions", "-p", vhost, name, ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True, timeout=60)
    try:
        yield with_user(broker_url, name, password)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60)


@dataclass
class Stack:
    broker_url: str
    database_url: str
    workdir: Path
    capture_root: str = "/var/captures"
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    # For the API, control worker and notifier only (an identity, say), never for agents.
    control_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # process name -> its /metrics port
    token: str = field(default_factory=new_token)
    agent_urls: dict[str, str] = field(default_factory=dict)  # VM key -> its agent's own broker URL

    def __post_init__(self) -> None:
        """One contributor token for every subscription, stored hashed as in production, and a
        broker user whose queue submissions may create captures in the lab's subscription (the
        broker user itself exists only while a test makes it)."""
        grant = {"name": "lab", "sha256": hash_token(self.token), "subscriptions": ["*"], "role": "contributor"}
        submitter = {"user": LAB_SUBMITTER, "subscriptions": [LAB_SUBSCRIPTION], "role": "contributor"}
        (self.workdir / "access.json").write_text(json.dumps({"tokens": [grant], "brokerUsers": [submitter]}))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PACKETWATCH_BROKER_URL": self.broker_url,
                "PACKETWATCH_DATABASE_URL": self.database_url, "PACKETWATCH_CAPTURE_ROOT": self.capture_root,
                "PACKETWATCH_HEARTBEAT_SECONDS": "2", "PACKETWATCH_LOG_FORMAT": "json",
                "PACKETWATCH_ACCESS_CONFIG": str(self.workdir / "access.json"), **self.extra_env}

    def spawn(self, name: str, *args: str, env: Mapping[str, str | None] | None = None) -> subprocess.Popen:
        """Start `packetwatch ARGS`; `env` adds variables, or removes those it maps to None."""
        log = (self.workdir / f"{name}.log").open("ab")
        merged = {**self.env(), **(env or {})}
        process = subprocess.Popen([sys.executable, "-m", "cli.main", *args],
                                   env={key: value for key, value in merged.items() if value is not None},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def capture_dir(self, vm: LabVm) -> Path:
        return self.workdir / "vms" / vm.netns

    def start_api(self) -> None:
        self.spawn("control", "control", "run", *self._metrics_port("control"), env=self.control_env)
        self.spawn("notify", "notify", "run", *self._metrics_port("notify"), env=self.control_env)
        self.start_server("api", self.port)

    def start_server(self, name: str, port: int, *serve_options: str, verify: ssl.SSLContext | None = None,
                     env: dict[str, str] | None = None) -> str:
        """Start an API process (`packetwatch serve`) and wait until it answers; returns its URL."""
        self.spawn(name, "serve", "--port", str(port), *serve_options, env={**self.control_env, **(env or {})})
        url = f"{'https' if verify else 'http'}://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1, verify=verify or True).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError(f"{name} did not answer within {START_TIMEOUT}s; see {self.workdir}/{name}.log")

    def start_agent(self, vm: LabVm, *options: str) -> None:
        """An agent as on a real VM: no database, no storage account keys, and a broker user
        of its own, enrolled as `packetwatch agent enroll` does (once per VM)."""
        self.spawn(f"agent-{vm.netns}", "agent", "run", "--vm", vm.vm.arm_id, "--interface", vm.vm_if,
                   "--netns", vm.netns, "--capture-dir", str(self.capture_dir(vm)), *options,
                   *self._metrics_port(f"agent-{vm.netns}"), env=self.agent_env(vm.vm))
        self.wait_for_consumer(agent_queue_name(vm.vm))

    def agent_broker_url(self, vm: VirtualMachineId) -> str:
        """The broker URL of `vm`'s agent: a user of its own, enrolled on first use."""
        if vm.key not in self.agent_urls:
            with BrokerAdmin(self.broker_url) as admin:
                self.agent_urls[vm.key] = admin.enroll(vm).broker_url
        return self.agent_urls[vm.key]

    def agent_env(self, vm: VirtualMachineId) -> dict[str, str | None]:
        """What an agent for `vm` runs with here: its own broker user, none of the control side's settings."""
        return {**dict.fromkeys(CONTROL_SIDE_ONLY), "PACKETWATCH_BROKER_URL": self.agent_broker_url(vm)}

    def _metrics_port(self, name: str) -> tuple[str, str]:
        self.metrics_ports[name] = free_port()
        return "--metrics-port", str(self.metrics_ports[name])

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}"

    def wait_for_consumer(self, queue: str) -> None:
        wait_for_consumer(self.broker_url, queue)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            Child(name, process, timeout, sig).stop(log.info)

    def stop_all(self) -> None:
        for name in [n for n in self.processes if n.startswith("agent-")] + ["api", "control", "notify"]:
            self.stop(name)
