"""docker-compose.yml as far as it can be checked without pulling images: it validates
against the Compose Specification schema (docker-compose config), every file it names
exists, RabbitMQ's definitions give the services a user they can log in with, and every
service built from this repository starts with its compose environment mapped to local
addresses."""

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from kombu import Connection

from lab.stack import free_port, temporary_vhost, wait_for_consumer
from shared.broker import CONTROL_QUEUE, NOTIFY_QUEUE, agent_queue_name
from shared.broker_identity import AgentPermissions, agent_user
from shared.resource_ids import VirtualMachineId

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
MOUNTS = {"/config": ROOT / "config", "/compose": ROOT / "infra" / "compose"}


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_file_validates_against_the_compose_specification():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian's, with the Compose Specification schema) is not installed")
    result = subprocess.run([tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_every_file_it_names_exists():
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
        for key, value in service.get("environment", {}).items():
            for inside, outside in MOUNTS.items():
                if str(value).startswith(inside + "/"):
                    assert (outside / value[len(inside) + 1:]).is_file(), f"{name}: {key}={value} names no file"
    assert (ROOT / "Dockerfile").is_file()


DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.json"
COMPOSE_VM = VirtualMachineId("00000000-0000-0000-0000-000000000000", "local", "docker-host")


def _broker_users() -> dict[str, tuple[str, str]]:
    """Each service's broker user and password, from its compose environment."""
    return {name: re.match(r"amqp://([^:]+):([^@]+)@", str(s["environment"]["PACKETWATCH_BROKER_URL"])).groups()
            for name, s in _services().items() if "PACKETWATCH_BROKER_URL" in s.get("environment", {})}


@contextmanager
def _definitions_in(vhost: str) -> Iterator[dict[str, str]]:
    """RabbitMQ's definitions imported into `vhost`, each user under a name of this run's own
    (users are the broker's, not the virtual host's); yields user -> the name it has here."""
    definitions = json.loads(DEFINITIONS.read_text())
    renamed = {user["name"]: f"{user['name']}-{secrets.token_hex(3)}" for user in definitions["users"]}
    text = json.dumps(definitions).replace('"vhost": "/"', f'"vhost": "{vhost}"').replace(
        '"name": "/"', f'"name": "{vhost}"')
    for user, name in renamed.items():
        text = text.replace(f'"{user}"', f'"{name}"')
    subprocess.run(["rabbitmqctl", "-q", "import_definitions", "--format", "json"], input=text,
                   check=True, capture_output=True, text=True, timeout=120)
    try:
        yield renamed
    finally:
        for name in renamed.values():
            subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60)


def test_rabbitmq_definitions_give_each_service_a_user_of_its_own_with_only_what_it_needs():
    definitions = json.loads(DEFINITIONS.read_text())
    users = _broker_users()
    assert set(users) == {"api", "control", "notify", "agent"}
    assert len({user for user, _ in users.values()}) == 4 and "guest" not in dict(users.values())
    assert users["agent"][0] == agent_user(COMPOSE_VM), "the compose agent logs in as its VM's own agent user"
    permissions = {entry["user"]: entry for entry in definitions["permissions"]}
    assert not [user for user, entry in permissions.items()
                if ".*" in (entry["configure"], entry["write"], entry["read"])], "nobody is granted everything"
    mine, topic = AgentPermissions.of(COMPOSE_VM).definitions("/")
    assert permissions[users["agent"][0]] == mine and definitions["topic_permissions"] == [topic]
    with temporary_vhost() as broker_url:
        vhost = broker_url.rsplit("/", 1)[1]
        with _definitions_in(vhost) as renamed:
            deadline = time.monotonic() + 20  # the import is asynchronous
            for service, (user, password) in users.items():
                while True:
                    try:
                        with Connection(f"amqp://{renamed[user]}:{password}@127.0.0.1:5672/{vhost}",
                                        connect_timeout=5) as conn:
                            conn.connect()
                            assert conn.channel().queue_declare(CONTROL_QUEUE, passive=True)  # the definitions made it
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)


def _local(value: str, vhost: str, renamed: dict[str, str], state: Path) -> str:
    value = re.sub(r"amqp://([^:]+):([^@]+)@(rabbitmq|127\.0\.0\.1):5672//",
                   lambda m: f"amqp://{renamed[m.group(1)]}:{m.group(2)}@127.0.0.1:5672/{vhost}", value)
    value = value.replace("/state/", f"{state}/")
    for inside, outside in MOUNTS.items():
        value = value.replace(f"{inside}/", f"{outside}/")
    return value


def _command(service: dict, env: dict[str, str], state: Path) -> list[str]:
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), service["command"])
    words = shlex.split(text)
    assert words[0] == "packetwatch"
    return [sys.executable, "-m", "cli.main", *[_local(w, "", {}, state) if w.startswith("/compose") else w
                                                for w in words[1:]]]


def test_every_service_built_here_starts_with_its_compose_environment_on_local_addresses(tmp_path):
    services = {name: s for name, s in _services().items() if s.get("build") == "."}
    assert set(services) == {"api", "control", "notify", "agent"}
    port = free_port()
    vm = COMPOSE_VM
    processes = {}
    with temporary_vhost() as broker_url, _definitions_in(broker_url.rsplit("/", 1)[1]) as renamed:
        vhost = broker_url.rsplit("/", 1)[1]
        try:
            for name, service in services.items():  # each as its own broker user, with only what it needs
                env = {**os.environ, "PACKETWATCH_INTERFACE": "lo"}
                env.update({key: _local(str(value), vhost, renamed, tmp_path)
                            for key, value in service.get("environment", {}).items()})
                command = _command(service, env, tmp_path)
                if name == "api":
                    command[command.index("--port") + 1] = str(port)
                    command[command.index("--host") + 1] = "127.0.0.1"
                if name == "agent":
                    command[command.index("--capture-dir") + 1] = str(tmp_path / "captures")
                log = (tmp_path / f"{name}.log").open("wb")
                processes[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                   cwd=ROOT, start_new_session=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            for queue in (CONTROL_QUEUE, NOTIFY_QUEUE, agent_queue_name(vm)):
                wait_for_consumer(broker_url, queue)  # TimeoutError: see the logs in tmp_path
            assert all(p.poll() is None for p in processes.values())
            for name, service in services.items():
                check = service["healthcheck"]["test"]
                assert check[:3] == ["CMD", "packetwatch", "probe"], name
                url = check[3].replace(":8080/", f":{port}/")
                probe = subprocess.run([sys.executable, "-m", "cli.main", "probe", url, "--wait", "30"],
                                       capture_output=True, text=True, timeout=60, cwd=ROOT)
                assert probe.returncode == 0, (name, probe.stdout, probe.stderr)
                assert json.loads(probe.stdout)["status"] == "ready", name
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(30)
