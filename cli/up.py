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
from pathlib import Path

import httpx

from lab.azurite import ACCOUNT, Azurite
from lab.stack import free_port, has_consumer
from lab.tour import Traffic
from lab.vms import LabVm, create_vms, remove_vms
from shared.access import Role, create_token, load_access_config
from shared.broker import agent_queue_name
from shared.config import CONTROL_SIDE_ONLY
from shared.registry import Registry
from shared.resource_ids import VirtualMachineId

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_GROUP = "local"
START_TIMEOUT = 60.0
LAB_METRICS_PORTS = 9820  # the first lab VM's agent; the default ports of the others are the host agent's
LOCAL_STORAGE_ID = (f"/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_GROUP}/providers/"
                    f"Microsoft.Storage/storageAccounts/{ACCOUNT}")


def default_route_interface() -> str:
    """The interface of this machine's IPv4 default route (loopback when there is none)."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                return fields[0]
    except OSError:
        pass
    return "lo"


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
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    vms: list[LabVm] = field(default_factory=list)
    traffic: Traffic | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def path(self, name: str) -> Path:
        return self.state_dir / name

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

    def spawn(self, name: str, env: dict[str, str], *args: str) -> None:
        log = self.path("logs").joinpath(f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> str | None:
        for folder in ("logs", "captures"):
            self.path(folder).mkdir(parents=True, exist_ok=True, mode=0o750)
        token = self.first_token()
        azurite = Azurite(self.state_dir)
        azurite.start()
        self.azurite = azurite
        env = self.env(azurite)
        self.spawn("api", env, "serve", "--host", self.host, "--port", str(self.port))
        self.spawn("control", env, "control", "run")
        self.spawn("notify", env, "notify", "run")
        agent_env = {key: value for key, value in env.items() if key not in CONTROL_SIDE_ONLY}
        self.spawn("agent", agent_env, "agent", "run", "--vm", self.vm.arm_id, "--interface", self.interface,
                   "--capture-dir", str(self.path("captures")))
        if self.lab_vms:
            self.vms = create_vms(self.lab_vms, LOCAL_SUBSCRIPTION, LOCAL_GROUP)
            for number, vm in enumerate(self.vms):
                self.spawn(f"agent-{vm.vm.name}", agent_env, "agent", "run", "--vm", vm.vm.arm_id, "--interface",
                           vm.vm_if, "--netns", vm.netns, "--capture-dir", str(self.path("captures") / vm.vm.name),
                           "--metrics-port", str(LAB_METRICS_PORTS + number))
        self._wait_until_ready()
        if self.vms:
            self.traffic = Traffic(self.vms)
            self.traffic.start()
        return token

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                vms = [self.vm, *(lab.vm for lab in self.vms)]
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
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {self.path('logs') / name}.log")

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if getattr(self, "azurite", None) is not None:
            self.azurite.stop()
        remove_vms(self.vms)

    def banner(self, token: str | None) -> str:
        shown = token or "(the token printed on the first start; `packetwatch token create` makes another)"
        command = ["packetwatch", "packet-capture", "create", "--api", self.api_url, "--token", token or "TOKEN",
                   "--subscription", LOCAL_SUBSCRIPTION, "-g", LOCAL_GROUP, "-n", "first-capture",
                   "--vm", self.vm.arm_id, "--file-path", "/var/captures/first-capture.cap", "--time-limit", "60"]
        return "\n".join([
            f"PacketWatch is up (state in {self.state_dir}; logs in {self.path('logs')})",
            f"  console:  {self.api_url}/",
            f"  token:    {shown}" + ("   <- shown once, stored hashed" if token else ""),
            f"  agent:    {self.vm.arm_id} on {self.interface}",
            *[f"  lab VM:   {vm.vm.arm_id} ({vm.address}, an agent, traffic every second)" for vm in self.vms],
            f"  storage:  Azurite, account {ACCOUNT} ({LOCAL_STORAGE_ID})",
            f"  metrics:  {self.api_url}/metrics (API), http://127.0.0.1:9810/metrics (agent), :9811 (control), "
            ":9812 (notifier)" + (f", :{LAB_METRICS_PORTS}… (lab agents)" if self.vms else ""),
            "  try:      " + shlex.join(command),
            "Ctrl-C stops everything.",
        ])


def run_up(state_dir: Path, interface: str | None, port: int, host: str = "127.0.0.1", lab_vms: int = 0) -> int:
    up = Up(state_dir.resolve(), interface or default_route_interface(), port or free_port(), host, lab_vms=lab_vms)
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
