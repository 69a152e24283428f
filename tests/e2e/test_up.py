"""The README's first command: the whole stack on this machine, staying up until Ctrl-C.
Started as a person would, on a fresh state directory; a capture made with the command
and token it prints, on its host agent (here on `lo`, traffic to 127.0.0.1 only); then
Ctrl-C, and no process of the stack is left."""

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.arm_client import ArmRoutes
from lab.stack import free_port, temporary_vhost
from shared.resource_ids import CaptureId
from tests.e2e.conftest import tshark_records
from tests.e2e.test_console import PLAYWRIGHT_CORE, drive

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
        match = re.match(r"\s+(console|token|agent|metrics|env|try):\s+(\S.*)$", line)
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


def _azurite_pid(state_dir: Path) -> int:
    [pid] = [int(proc.name) for proc in Path("/proc").iterdir() if proc.name.isdigit()
             and f"{state_dir}/azurite".encode() in _read(proc / "cmdline") and b"azurite" in _read(proc / "cmdline")]
    return pid


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _up(state_dir: Path, port: int, broker_url: str, command: list[str] | None = None) -> subprocess.Popen:
    command = command or [sys.executable, "-m", "cli.main", "up", "--state-dir", str(state_dir), "--interface", "lo",
                          "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PACKETWATCH_BROKER_URL": broker_url},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _ctrl_c(process: subprocess.Popen) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal: the foreground process group
    return process.wait(120)


def _az(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**environment, "PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def _ok(result: subprocess.CompletedProcess):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def _until(predicate, timeout: float = 60.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return value


def _store_a_capture(environment: dict[str, str], try_line: str, state_dir: Path, name: str, port: int) -> Path:
    """The banner's az command with the banner's storage account and a file kept on the VM;
    nine datagrams captured; stopped; returns once show-status says it is stored."""
    command = shlex.split(try_line)
    assert command[:5] == ["packetwatch", "network", "watcher", "packet-capture", "create"]
    command[command.index("-n") + 1] = name
    command[command.index("--file-path") + 1] = f"/var/captures/{name}.cap"
    command += ["--storage-account", "devstoreaccount1",
                "--filters", json.dumps([{"protocol": "UDP", "localPort": str(port)}])]
    _ok(_az(environment, *command[1:]))
    show = ("network", "watcher", "packet-capture", "show-status", "-l", "local", "-n", name)
    _until(lambda: _ok(_az(environment, *show))["packetCaptureStatus"] == "Running", every=0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(9):
            sender.sendto(f"packet {index}".encode(), ("127.0.0.1", port))
    time.sleep(0.5)
    assert _az(environment, "network", "watcher", "packet-capture", "stop", "-l", "local", "-n", name).returncode == 0
    status = _until(lambda: (found := _ok(_az(environment, *show))).get("packetWatchStored") and found, every=0.05)
    assert status["packetCaptureStatus"] == "Stopped" and status["packetWatchSummary"]["packets"] == 9
    return state_dir / "captures" / f"{name}.cap"


def _downloaded(client: ArmRoutes, capture: CaptureId) -> bytes:
    answer = client.download_url(capture)
    assert answer.status_code == 200, answer.text
    blob = httpx.get(answer.json()["url"], timeout=30)
    assert blob.status_code == 200, f"storage lost the blob the registry says is stored: {blob.status_code}"
    return blob.content


def test_the_first_command_brings_up_a_stack_the_how_to_drives_and_ctrl_c_loses_nothing_stored(tmp_path):
    """`make up`, the banner's az commands, a capture stored well under a second before Ctrl-C:
    after `up` starts again it downloads byte for byte. Storage then crashes (SIGKILL) just after
    storing another: after the next start the registry says "stored" only of a blob storage has."""
    assert _readme_first_command() == ["make", "up"]
    state_dir, port = tmp_path / "state", free_port()
    with temporary_vhost() as broker_url:
        process = _up(state_dir, port, broker_url,
                      ["make", "up", f"UP_ARGS=--state-dir {state_dir} --interface lo --port {port}"])
        try:
            shown = _banner(process)
            assert httpx.get(shown["console"], timeout=10).text.lstrip().lower().startswith("<!doctype html")
            token = shown["token"]
            assert token not in (state_dir / "access.yaml").read_text()
            exported = shlex.split(shown["env"])
            assert exported[0] == "export"
            environment = dict(item.split("=", 1) for item in exported[1:])
            assert environment["PACKETWATCH_TOKEN"] == token
            host_vm = shown["agent"].split()[0]

            watchers = _ok(_az(environment, "network", "watcher", "list"))
            assert [(w["name"], w["resourceGroup"], w["location"]) for w in watchers] == [
                ("NetworkWatcher_local", "NetworkWatcherRG", "local")]
            extension = _ok(_az(environment, "vm", "extension", "show", "-g", "local", "--vm-name",
                                host_vm.rsplit("/", 1)[1], "-n", "NetworkWatcherAgentLinux"))
            assert (extension["location"], extension["provisioningState"]) == ("local", "Succeeded")
            served = re.findall(r"(\S+) http://127\.0\.0\.1:(\d+)/metrics", shown["metrics"])
            assert {name for name, _ in served} == {"API", "agent", "control", "notify"}
            for name, metrics_port in served:
                assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200

            name = f"up-{secrets.token_hex(3)}"
            local_file = _store_a_capture(environment, shown["try"], state_dir, name, 9753)
            stored_seen = time.monotonic()
        finally:
            interrupted = time.monotonic()
            _ctrl_c(process)  # make passes Ctrl-C on, waits for `up` to finish, and exits as interrupted
        assert interrupted - stored_seen < 1.0, "Ctrl-C well under a second after the capture was stored"
        assert "killed" not in (state_dir / "logs" / "up.log").read_text(), "each process saved and exited"
        assert (state_dir / "logs" / "azurite.log").exists() and not (state_dir / "azurite.log").exists()
        _until(lambda: not _stack_processes(state_dir), timeout=10, every=0.2)
        records = tshark_records(local_file)
        assert len(records) == 9 and {(r[0], r[1], r[2], r[4]) for r in records} == {
            ("UDP", "127.0.0.1", "127.0.0.1", 9753)}

        process = _up(state_dir, port, broker_url)
        try:
            shown_again = _banner(process)
            client = ArmRoutes(shown_again["console"].rstrip("/"), token)
            capture = CaptureId.parse(f"/subscriptions/{environment['PACKETWATCH_SUBSCRIPTION']}/resourceGroups/"
                                      f"NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/"
                                      f"NetworkWatcher_local/packetCaptures/{name}")
            assert _downloaded(client, capture) == local_file.read_bytes()

            crashed = f"crash-{secrets.token_hex(3)}"
            _store_a_capture(environment | {"PACKETWATCH_API_URL": shown_again["console"].rstrip("/")},
                             shown_again["try"], state_dir, crashed, 9754)
            os.kill(_azurite_pid(state_dir), signal.SIGKILL)  # storage crashes: `up` stops the rest and says why
            assert process.wait(120) == 1
        finally:
            _ctrl_c(process)

        process = _up(state_dir, port, broker_url)
        try:
            _banner(process)
            lost = CaptureId.parse(capture.arm_id.rsplit("/", 1)[0] + f"/{crashed}")
            status = client.status(lost)
            if status.get("packetWatchStored"):
                assert _downloaded(client, lost)[:4] == bytes.fromhex("d4c3b2a1")
            else:
                assert (status["packetCaptureStatus"], status["packetCaptureError"]) == ("Error", ["StorageFailed"])
                assert "storage no longer has the blob" in json.dumps(status)
                assert "no longer has" in (state_dir / "logs" / "up.log").read_text()
            assert _downloaded(client, capture) == local_file.read_bytes(), "what was saved stays"
        finally:
            assert _ctrl_c(process) == 0
        assert _stack_processes(state_dir) == []


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
def test_up_takes_free_metrics_ports_prints_only_what_it_serves_and_its_console_needs_only_the_token(tmp_path):
    state_dir, port = tmp_path / "state", free_port()
    with socket.socket() as holder, temporary_vhost() as broker_url:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", 9811))
            holder.listen()
        except OSError:
            pass  # another process holds it already: the same case
        process = _up(state_dir, port, broker_url)
        try:
            shown = _banner(process)
            metrics = shown["metrics"]
            served = dict(re.findall(r"(\S+) http://127\.0\.0\.1:(\d+)/metrics", metrics))
            assert set(served) == {"API", "agent", "control", "notify"} and served["control"] != "9811"
            answer = httpx.get(f"http://127.0.0.1:{served['control']}/metrics", timeout=5)
            assert "packetwatch_control_messages_total" in answer.text
            assert "packetwatch_agent_info" in httpx.get(f"http://127.0.0.1:{served['agent']}/metrics", timeout=5).text

            env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "CONSOLE_URL": shown["console"],
                   "TOKEN": shown["token"], "SUBSCRIPTION": "00000000-0000-0000-0000-000000000000",
                   "WATCHER": "NetworkWatcher_local", "VM": shown["agent"].split()[0]}
            first: list[str] = []
            drive("console_token_only.cjs", env, first.append)
            assert first[0].startswith("CONNECTED with the token alone")
        finally:
            assert _ctrl_c(process) == 0


def test_up_with_lab_vms_gives_a_tour_with_traffic_to_capture_and_leaves_nothing_behind(tmp_path):
    state_dir, port = tmp_path / "state", free_port()
    with temporary_vhost() as broker_url:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--lab", "1", "--state-dir", str(state_dir), "--interface", "lo",
             "--port", str(port)], cwd=ROOT, env={**os.environ, "PACKETWATCH_BROKER_URL": broker_url},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            shown = _banner(process)
            client = ArmRoutes(shown["console"].rstrip("/"), shown["token"])
            agents = client.agents().json()["value"]
            [lab] = [a for a in agents if a["vm"] != shown["agent"].split()[0]]
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
