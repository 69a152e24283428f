"""`packetwatch up`: the whole stack on this machine, staying up until Ctrl-C.

The API and web console, the control worker, the notifier, Azurite as the default storage
account and an agent capturing on an interface of this machine. Everything it keeps (the
registry, tokens, configuration, captures, Azurite's data, logs) lives in one state
directory: --state-dir, else shared.config.state_dir(). Ctrl-C stops every process it started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import create_engine

from cli.supervisor import Child, free_port, stop_in_stages
from cli.agent_enroll import BrokerAdmin
from cli.agent_install import default_route_interface
from cli.azurite import ACCOUNT, STOP_GRACE_SECONDS, Azurite
from shared.access import Role, create_token, load_access_config
from shared.broker import agent_queue_name, has_consumer
from shared.config import CONTROL_SIDE_ONLY
from shared.registry import Registry
from shared.registry_migrations import upgrade
from shared.resource_ids import VirtualMachineId
from shared.storage_accounts import load_storage_accounts
from shared.stored_blobs import audit_stored_blobs

if TYPE_CHECKING:
    from lab.tour import Tour

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_GROUP = "local"
START_TIMEOUT = 60.0
# Each worker's /metrics, /healthz and /readyz: these ports when free, else any free one.
PROBE_PORTS = {"agent": 9810, "control": 9811, "notify": 9812}
LAB_PROBE_PORTS = 9820  # the first lab VM's agent
# How long each may take to save its state after SIGTERM before it is killed: an agent ends
# its captures (reports, upload requests) and finishes the uploads it has begun.
GRACE_SECONDS = {"api": 15.0, "agent": 60.0, "control": 30.0, "notify": 30.0}
LOCAL_STORAGE_ID = (f"/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_GROUP}/providers/"
                    f"Microsoft.Storage/storageAccounts/{ACCOUNT}")


def available_port(preferred: int) -> int:
    """`preferred` when nothing holds it, else a free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


@dataclass
class Up:
    state_dir: Path
    interface: str
    port: int
    host: str = "127.0.0.1"
    vm: VirtualMachineId = field(default_factory=lambda: VirtualMachineId(
        LOCAL_SUBSCRIPTION, LOCAL_GROUP, socket.gethostname().split(".")[0] or "host"))
    broker_url: str = field(default_factory=lambda: os.environ.get(
        "PACKETWATCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    lab_vms: int = 0
    location: str = "local"
    children: dict[str, Child] = field(default_factory=dict)
    probe_ports: dict[str, int] = field(default_factory=dict)  # worker -> the port its probes were given
    tour: Tour | None = None  # the lab VMs of --lab, with their traffic

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def lab_machines(self) -> list:  # the lab VMs of --lab (lab.vms.LabVm)
        return self.tour.vms if self.tour is not None else []

    def path(self, name: str) -> Path:
        return self.state_dir / name

    def say(self, line: str) -> None:
        """To the terminal and to logs/up.log."""
        print(line, flush=True)
        with self.path("logs").joinpath("up.log").open("a") as log:
            log.write(f"{datetime.now(timezone.utc).isoformat(timespec='milliseconds')} {line}\n")

    def first_token(self) -> str | None:
        """A contributor token on the first start (printed once); None when tokens exist."""
        access = self.path("access.yaml")
        if access.exists() and load_access_config(str(access)).tokens:
            return None
        return create_token(access, "up-admin", Role.CONTRIBUTOR, ["*"])

    def env(self, azurite: Azurite) -> dict[str, str]:
        self.path("storage.json").write_text(json.dumps(
            {"accounts": {ACCOUNT: {"connectionString": azurite.connection_string}}}))
        return {**os.environ, "PACKETWATCH_BROKER_URL": self.broker_url,
                "PACKETWATCH_DATABASE_URL": self.database_url,
                "PACKETWATCH_ACCESS_CONFIG": str(self.path("access.yaml")),
                "PACKETWATCH_STORAGE_CONFIG": str(self.path("storage.json"))}

    def spawn(self, name: str, grace_seconds: float, env: dict[str, str], *args: str) -> None:
        log = self.path("logs").joinpath(f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.children[name] = Child(name, process, grace_seconds)

    def spawn_worker(self, name: str, kind: str, env: dict[str, str], *args: str, port: int) -> None:
        """A Celery worker with its probes on `port` if free, else on a free port."""
        self.probe_ports[name] = available_port(port)
        self.spawn(name, GRACE_SECONDS[kind], env, *args, "--metrics-port", str(self.probe_ports[name]))

    def start(self) -> str | None:
        for folder in ("logs", "captures"):
            self.path(folder).mkdir(parents=True, exist_ok=True, mode=0o750)
        token = self.first_token()
        azurite = Azurite(self.state_dir, log=self.path("logs") / "azurite.log")
        self.children["azurite"] = Child("azurite", azurite.start(), STOP_GRACE_SECONDS)
        env = self.env(azurite)
        self.audit_storage()
        self.spawn("api", GRACE_SECONDS["api"], env, "serve", "--host", self.host, "--port", str(self.port))
        self.spawn_worker("control", "control", env, "control", "run", port=PROBE_PORTS["control"])
        self.spawn_worker("notify", "notify", env, "notify", "run", port=PROBE_PORTS["notify"])
        agent_env = {key: value for key, value in env.items() if key not in CONTROL_SIDE_ONLY}
        self.spawn_worker("agent", "agent", self.enrolled(agent_env, self.vm), "agent", "run", "--vm", self.vm.arm_id,
                          "--interface",
                          self.interface, "--capture-dir", str(self.path("captures")), "--location", self.location,
                          port=PROBE_PORTS["agent"])
        if self.lab_vms:
            self.tour = open_tour(self.lab_vms)
            for number, vm in enumerate(self.tour.vms):
                self.spawn_worker(f"agent-{vm.vm.name}", "agent", self.enrolled(agent_env, vm.vm), "agent", "run",
                                  "--vm", vm.vm.arm_id,
                                  "--interface", vm.vm_if, "--netns", vm.netns, "--capture-dir",
                                  str(self.path("captures") / vm.vm.name), "--location", self.location,
                                  port=LAB_PROBE_PORTS + number)
        self._wait_until_ready()
        if self.tour is not None:
            self.tour.traffic.start()
        return token

    def enrolled(self, agent_env: dict[str, str], vm: VirtualMachineId) -> dict[str, str]:
        """An agent's environment with a broker user of its own (`packetwatch agent enroll`)."""
        with BrokerAdmin(self.broker_url) as admin:
            return {**agent_env, "PACKETWATCH_BROKER_URL": admin.enroll(vm).broker_url}

    def audit_storage(self) -> None:
        """Blobs the registry says are stored but Azurite no longer has (it was killed before it
        saved its index): their captures are made to say so before anyone asks for them. The
        stack's own registry is brought to this release's schema first (as `packetwatch db
        upgrade` does; every capture kept)."""
        if not self.path("registry.db").exists():
            return
        engine = create_engine(self.database_url)
        try:
            before, after = upgrade(engine)
        finally:
            engine.dispose()
        if before != after:
            self.say(f"registry: schema revision {before} -> {after} (captures kept)")
        registry = Registry.from_url(self.database_url)
        try:
            lost = audit_stored_blobs(registry, load_storage_accounts(str(self.path("storage.json"))))
        finally:
            registry.engine.dispose()
        for blob in lost:
            self.say(f"storage: Azurite no longer has {blob.blob_url} (it was stopped without saving); "
                     f"{blob.capture_id} now says so")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                vms = [self.vm, *(lab.vm for lab in self.lab_machines)]
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200 and all(
                        has_consumer(self.broker_url, agent_queue_name(vm)) for vm in vms) and self._reported(vms):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the stack did not come up within {START_TIMEOUT:.0f} s; see {self.path('logs')}")

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.path('registry.db')}"

    def _reported(self, vms: list[VirtualMachineId]) -> bool:
        """Every agent's first heartbeat is in the registry: the banner's commands find them."""
        registry = Registry.from_url(self.database_url)
        try:
            return all(registry.agent(vm.arm_id) is not None for vm in vms)
        finally:
            registry.engine.dispose()

    def _check_alive(self) -> None:
        for name, child in self.children.items():
            if not child.running():
                log = self.path("logs") / f"{name}.log"
                raise RuntimeError(f"{name} exited ({child.process.returncode}); see {log}")

    def served_probes(self) -> dict[str, int]:
        """The workers whose probes answer on their port from their own process (another
        process may have taken the port between our look and the worker's bind)."""
        served = {}
        for name, port in self.probe_ports.items():
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if answer.status_code == 200 and answer.json().get("pid") == self.children[name].process.pid:
                    served[name] = port
            except (httpx.HTTPError, ValueError):
                pass
        return served

    def stop(self) -> None:
        """The API first (nothing new comes in), then the agents (their captures end and are
        reported, uploads begun are finished, requests not yet taken stay queued), then the
        control worker and notifier (what they hold applied or handed back to the broker),
        and storage last: each saves its state on SIGTERM, and is killed only past its grace."""
        if self.tour is not None:
            self.tour.traffic.stop()
        def named(*names: str) -> list[Child]:
            return [child for name, child in self.children.items() if name in names]

        agents = [child for name, child in self.children.items() if name.startswith("agent")]
        stop_in_stages([named("api"), agents, named("control", "notify"), named("azurite")], self.say)
        if self.tour is not None:
            self.tour.remove()

    def banner(self, token: str | None) -> str:
        shown = token or "(the token printed on the first start; `packetwatch token create` makes another)"
        environment = {"PACKETWATCH_API_URL": self.api_url, "PACKETWATCH_TOKEN": token or "TOKEN",
                       "PACKETWATCH_SUBSCRIPTION": LOCAL_SUBSCRIPTION}
        command = ["packetwatch", "network", "watcher", "packet-capture", "create", "-g", LOCAL_GROUP,
                   "--vm", self.vm.name, "-n", "first-capture", "--file-path", "/var/captures/first-capture.cap",
                   "--time-limit", "60"]
        served = self.served_probes()
        probes = [f"{name} http://127.0.0.1:{served[name]}/metrics" if name in served
                  else f"{name} not served (port {port} answers for another process)"
                  for name, port in self.probe_ports.items()]
        return "\n".join([
            f"PacketWatch is up (state in {self.state_dir}; logs in {self.path('logs')})",
            f"  console:  {self.api_url}/",
            f"  token:    {shown}" + ("   <- shown once, stored hashed" if token else ""),
            f"  agent:    {self.vm.arm_id} on {self.interface}, region {self.location}",
            *[f"  lab VM:   {vm.vm.arm_id} ({vm.address}, an agent, traffic every second)" for vm in self.lab_machines],
            f"  storage:  Azurite, account {ACCOUNT} ({LOCAL_STORAGE_ID})",
            f"  metrics:  API {self.api_url}/metrics; " + "; ".join(probes),
            "  env:      export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in environment.items()),
            "  try:      " + shlex.join(command),
            f"  store:    the same with --storage-account {ACCOUNT} keeps the file in Azurite too",
            f"  watcher:  NetworkWatcher_{self.location} in NetworkWatcherRG (az's -l {self.location})",
            "Ctrl-C stops everything.",
        ])


def open_tour(count: int) -> Tour:
    """`count` lab VMs for --lab: the lab comes with the source checkout, not the package."""
    try:
        from lab.tour import Tour
    except ImportError as exc:
        raise RuntimeError("--lab needs the lab (test VMs and their traffic), which comes with PacketWatch's "
                           "source checkout, not with the package: run `make up UP_ARGS=\"--lab N\"` there") from exc
    return Tour(count, LOCAL_SUBSCRIPTION, LOCAL_GROUP)


def run_up(state_dir: Path, interface: str | None, port: int, host: str = "127.0.0.1", lab_vms: int = 0,
           location: str = "local") -> int:
    up = Up(state_dir.resolve(), interface or default_route_interface(), port or free_port(), host, lab_vms=lab_vms,
            location=location)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        token = up.start()
        print(up.banner(token), flush=True)
        while not stopping:
            up._check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:
        print(f"packetwatch up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping PacketWatch…", flush=True)
        up.stop()
    return 0
