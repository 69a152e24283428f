"""The web console in headless Chromium (Playwright): create -> Running -> stop -> download
-> delete, with screenshots of each step."""

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.traffic import inbound, send
from shared.resource_ids import CaptureId

ROOT = Path(__file__).resolve().parents[2]
PLAYWRIGHT_CORE = ROOT / ".tools" / "node_modules" / "playwright-core"
SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"


def drive(flow_file: str, env: dict[str, str], step: Callable[[str], None]) -> str:
    """Run a browser flow: its first line goes to `step` (which acts: sends traffic, stops a
    capture), then the flow is told to go on; returns what it printed, once it is DONE."""
    flow = subprocess.Popen(["node", str(ROOT / "tests" / "e2e" / flow_file)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = flow.stdout.readline()  # type: ignore[union-attr]
        if not first:
            raise AssertionError(flow.stderr.read())  # type: ignore[union-attr]
        step(first)
        out, err = flow.communicate("go on\n", timeout=120)
    finally:
        if flow.poll() is None:
            flow.kill()
    assert flow.returncode == 0 and "DONE" in out, err
    return out


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_console_creates_stops_downloads_and_deletes_a_capture(lab, tmp_path, viewport):
    vm = lab.vm1
    name = f"console-{secrets.token_hex(3)}"
    shots = SCREENSHOTS / viewport
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    downloaded = tmp_path / "download.cap"
    port = {"desktop": 7700, "phone": 7720}[viewport]
    env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "SCREENSHOTS": str(SCREENSHOTS),
           "VIEWPORT_NAME": viewport, "VIEWPORT": {"desktop": "1400x900", "phone": "390x844"}[viewport],
           "CONSOLE_URL": lab.stack.api_url + "/", "TOKEN": lab.stack.token, "SUBSCRIPTION": vm.vm.subscription,
           "RESOURCE_GROUP": vm.vm.resource_group, "WATCHER": "console-watcher", "TARGET": vm.vm.arm_id,
           "CAPTURE_NAME": name, "STORAGE_ACCOUNT": "devstoreaccount1", "LOCAL_PORT": str(port),
           "DOWNLOAD_TO": str(downloaded)}
    if viewport == "desktop":
        env["RING_NAME"] = f"{name}-ring"
    def running(first: str) -> None:
        assert first.strip() == "RUNNING"
        send(vm, [inbound(vm, "UDP", port + 1, port, payload=64), inbound(vm, "UDP", port + 1, port + 99)], repeat=6)

    drive("console_flow.cjs", env, running)
    data = downloaded.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1")
    assert (len(data) - 24) == 6 * (16 + 14 + 20 + 8 + 64), "the 6 packets to the filter's local port, nothing else"
    steps = ["1-connected.png", "2-create-form.png", "3-running.png", "4-stopped.png", "5-downloaded.png",
             "6-deleted.png"]
    assert sorted(p.name for p in shots.glob("[1-7]-*.png")) == steps + (
        ["7-continuous-running.png"] if viewport == "desktop" else [])
    if viewport == "phone":
        return
    ring = CaptureId(vm.vm.subscription, vm.vm.resource_group, "console-watcher", f"{name}-ring")
    properties = lab.client.get(ring).json()["properties"]
    assert properties["continuousCapture"] is True and properties["storageLocation"] == {
        "localPath": f"/var/captures/e2e/{name}-ring.cap"}
    assert properties["captureSettings"] == {"fileCount": 3, "fileSizeInBytes": 300000,
                                             "sessionTimeLimitInSeconds": 120}
    lab.client.stop(ring)
    assert lab.client.wait_for(ring, "Stopped")["stopReason"] == "ManuallyStopped"
    assert (lab.stack.capture_dir(vm) / "e2e" / f"{name}-ring_00001.cap").exists()
    lab.client.delete(ring)


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
def test_the_console_remembers_the_connection_searches_and_shows_a_captures_details_accessibly(lab):
    vm = lab.vm1
    name = f"details-{secrets.token_hex(3)}"
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "console-details", name)
    created = lab.client.create(capture, {"target": vm.vm.arm_id, "timeLimitInSeconds": 120,
                                          "storageLocation": {"filePath": f"/var/captures/e2e/{name}.cap"},
                                          "filters": [{"protocol": "UDP", "localPort": "7710"}]})
    assert created.status_code == 201, created.text
    lab.client.wait_for(capture, "Running")
    SCREENSHOTS.mkdir(exist_ok=True)
    env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "SCREENSHOTS": str(SCREENSHOTS),
           "CONSOLE_URL": lab.stack.api_url + "/", "TOKEN": lab.stack.token, "SUBSCRIPTION": vm.vm.subscription,
           "RESOURCE_GROUP": vm.vm.resource_group, "WATCHER": "console-details", "CAPTURE_NAME": name,
           "AXE": str(ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js")}
    def live(first: str) -> None:
        assert first.startswith("LIVE Running"), first
        send(vm, [inbound(vm, "UDP", 7711, 7710, payload=40)], repeat=4)
        time.sleep(0.5)
        lab.client.stop(capture)
        lab.client.wait_for(capture, "Stopped")

    out = drive("console_details.cjs", env, live)
    assert "STOPPED Stopped (ManuallyStopped): 4 packets" in out
    assert f"at /var/captures/e2e/{name}.cap" in out
    assert "AXE desktop" in out and "AXE phone" in out, "axe-core ran at both widths (no serious violation)"
    assert lab.client.get(capture).status_code == 404, "deleted from the command bar"
