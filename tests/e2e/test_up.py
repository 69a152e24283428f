"""The README's first command: the whole stack on this machine, staying up until Ctrl-C.
Started as a person would, on a fresh state directory; a capture made with the command
and token it prints, on its host agent (here on `lo`, traffic to 127.0.0.1 only); then
Ctrl-C, and no process of the stack is left."""

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cli.arm_client import ArmClient
from lab.stack import free_port, temporary_vhost
from shared.resource_ids import CaptureId
from tests.e2e.conftest import tshark_records

ROOT = Path(__file__).resolve().parents[2]


def _readme_first_command() -> list[str]:
    block = re.search(r"```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return shlex.split(block.splitlines()[0].split("#")[0])


def _banner(process: subprocess.Popen, timeout: float = 180.0) -> dict[str, str]:
    found: dict[str, str] = {}
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "try" not in found:
        line = process.stdout.readline()
        seen.append(line)
        if not line:
            raise AssertionError(f"the stack exited ({process.wait(10)}) before printing how to use it:\n"
                                 + "".join(seen[-40:]))
        match = re.match(r"\s+(console|token|try):\s+(\S.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).split("   <-")[0].strip()
    return found


def _stack_processes(state_dir: Path) -> list[int]:
    """Processes whose command line or environment names the state directory."""
    mine = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(state_dir).encode() in text:
            mine.append(int(proc.name))
    return mine


def test_the_first_command_brings_up_a_stack_that_captures_and_ctrl_c_stops_all_of_it(tmp_path):
    assert _readme_first_command() == ["make", "up"]
    state_dir, port = tmp_path / "state", free_port()
    with temporary_vhost() as broker_url:
        env = {**os.environ, "PACKETWATCH_BROKER_URL": broker_url}
        process = subprocess.Popen(
            ["make", "up", f"UP_ARGS=--state-dir {state_dir} --interface lo --port {port}"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            shown = _banner(process)
            assert httpx.get(shown["console"], timeout=10).text.lstrip().lower().startswith("<!doctype html")
            token = shown["token"]
            assert token in shown["try"] and token not in (state_dir / "access.yaml").read_text()

            name = f"up-{secrets.token_hex(3)}"
            command = shlex.split(shown["try"])
            assert command[0] == "packetwatch"
            command[command.index("-n") + 1] = name
            command[command.index("--file-path") + 1] = f"/var/captures/{name}.cap"
            command += ["--filters", json.dumps([{"protocol": "UDP", "localPort": "9753"}])]
            made = subprocess.run([sys.executable, "-m", "cli.main", *command[1:]], capture_output=True, text=True,
                                  timeout=60, cwd=ROOT)
            assert made.returncode == 0, made.stderr
            capture = CaptureId.parse(json.loads(made.stdout)["id"])
            client = ArmClient(shown["console"].rstrip("/"), token)
            client.wait_for(capture, "Running", timeout=60)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for index in range(9):
                    sender.sendto(f"packet {index}".encode(), ("127.0.0.1", 9753))
            time.sleep(0.5)
            assert client.stop(capture).status_code == 200
            status = client.wait_for(capture, "Stopped", "Error", timeout=30)
            assert status["packetCaptureStatus"] == "Stopped"
            path = Path(status["packetWatchSummary"]["filePaths"][0])
            assert path.is_relative_to(state_dir / "captures")
            records = tshark_records(path)
            assert len(records) == 9 == status["packetWatchSummary"]["packets"]
            assert {(r[0], r[1], r[2], r[4]) for r in records} == {("UDP", "127.0.0.1", "127.0.0.1", 9753)}
            assert _stack_processes(state_dir), "the stack's processes are found by their state directory"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal: the foreground process group
            process.wait(60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _stack_processes(state_dir):
            time.sleep(0.2)
        assert _stack_processes(state_dir) == []


def test_up_with_lab_vms_gives_a_tour_with_traffic_to_capture_and_leaves_nothing_behind(tmp_path):
    state_dir, port = tmp_path / "state", free_port()
    with temporary_vhost() as broker_url:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--lab", "1", "--state-dir", str(state_dir), "--interface", "lo",
             "--port", str(port)], cwd=ROOT, env={**os.environ, "PACKETWATCH_BROKER_URL": broker_url},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            shown = _banner(process)
            client = ArmClient(shown["console"].rstrip("/"), shown["token"])
            agents = client.agents().json()["value"]
            [lab] = [a for a in agents if a["vm"] != shown["try"].split("--vm ")[1].split()[0]]
            vm = lab["vm"]
            capture = CaptureId.parse(vm.replace("Microsoft.Compute/virtualMachines", "Microsoft.Network/"
                                                 "networkWatchers").rsplit("/", 1)[0] + "/tour/packetCaptures/tour")
            body = {"target": vm, "timeLimitInSeconds": 3, "storageLocation": {"filePath": "/var/captures/tour.cap"},
                    "filters": [{"protocol": "TCP", "localPort": "443"}]}
            assert client.create(capture, body).status_code == 201
            status = client.wait_for(capture, "Stopped", "Error", timeout=60)
            assert (status["packetCaptureStatus"], status["stopReason"]) == ("Stopped", "TimeExceeded")
            records = tshark_records(Path(status["packetWatchSummary"]["filePaths"][0]))
            assert records and all(r[0] == "TCP" and 443 in (r[3], r[4]) for r in records)
            assert all(r[1].startswith("198.18.") and r[2].startswith("198.18.") for r in records)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            process.wait(60)
        tag = lab["vm"].rsplit("-", 1)[1]  # lab VM vm1-TAG lives in namespace pwTAG0
        assert f"pw{tag}0" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert _stack_processes(state_dir) == []
