"""What an operator deploys: compose file, systemd unit, RabbitMQ definitions."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_names_every_part_the_readme_lists():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## The parts", 1)[1].split("\n## ", 1)[0]
    parts = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    parts = [p for p in parts if p != "part"]
    assert parts == ["RabbitMQ", "Azurite", "API", "control worker", "notifier", "agent"]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    names = {"RabbitMQ": "rabbitmq", "Azurite": "azurite", "API": "api", "control worker": "control",
             "notifier": "notify", "agent": "agent"}
    assert set(services) == {names[p] for p in parts}
    commands = {name: str(service.get("command", "")) for name, service in services.items()}
    assert "packetwatch serve" in commands["api"]
    assert "packetwatch control run" in commands["control"]
    assert "packetwatch notify run" in commands["notify"]
    assert "packetwatch agent run" in commands["agent"]
    assert services["agent"]["cap_add"] == ["NET_RAW"] and services["agent"]["cap_drop"] == ["ALL"]


def test_agent_unit_is_non_root_with_only_cap_net_raw_and_verifies(tmp_path):
    unit = (ROOT / "infra" / "systemd" / "packetwatch-agent.service").read_text()
    assert re.search(r"^User=packetwatch$", unit, re.M)
    assert re.search(r"^AmbientCapabilities=CAP_NET_RAW$", unit, re.M)
    assert re.search(r"^CapabilityBoundingSet=CAP_NET_RAW$", unit, re.M)
    assert re.search(r"^NoNewPrivileges=yes$", unit, re.M)
    installed = Path(sys.prefix) / "bin" / "packetwatch"
    assert installed.exists()
    local = tmp_path / "packetwatch-agent.service"
    local.write_text(unit.replace("/opt/packetwatch/bin/packetwatch", str(installed)))
    result = subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "verify", str(local)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_rabbitmq_definitions_declare_durable_quorum_queues():
    definitions = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())
    queues = {queue["name"]: queue for queue in definitions["queues"]}
    control = queues["packetwatch.control"]
    assert control["name"] == "packetwatch.control" and control["durable"] is True
    assert control["arguments"]["x-queue-type"] == "quorum"
    from shared.broker import CONTROL_QUEUE, QUEUE_ARGUMENTS
    assert control["name"] == CONTROL_QUEUE and control["arguments"] == QUEUE_ARGUMENTS
    # The intake's queues as it declares them (a declaration with other arguments would be refused).
    from shared.submissions import REJECTED_QUEUE, SUBMIT_QUEUE
    for queue in (SUBMIT_QUEUE, REJECTED_QUEUE):
        assert queues[queue.name]["arguments"] == queue.queue_arguments and queues[queue.name]["durable"] is True
    bound = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    assert (SUBMIT_QUEUE.exchange.name, SUBMIT_QUEUE.name, SUBMIT_QUEUE.routing_key) in bound


def test_host_json_serves_routes_without_a_prefix():
    host = json.loads((ROOT / "functions" / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""
