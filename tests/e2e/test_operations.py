"""What an operator watches, on the running lab: every process's /metrics move as a capture
runs, uploads and notifies; one capture is followed by its ID through the JSON logs of the
API, the control worker, the agent and the notifier; task events reach a Celery event
receiver (what Flower reads); an agent whose interface is gone is not ready."""

import json
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter as Tally
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lab.stack import STORAGE_ID
from cli.supervisor import free_port
from lab.traffic import inbound, send
from shared.broker import make_celery
from shared.messages import TaskName
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.version import VERSION
from tests.alert_samples import azure_common
from tests.e2e.conftest import FUNCTION_KEY

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _urls(lab) -> dict[str, str]:
    return {"api": lab.stack.api_url, "agent": lab.stack.metrics_url(f"agent-{lab.vm2.netns}"),
            "control": lab.stack.metrics_url("control"), "notify": lab.stack.metrics_url("notify")}


def _capture_with_upload(lab, port: int, packets: int) -> CaptureId:
    vm = lab.vm2
    capture = CaptureId(vm.vm.subscription, vm.vm.resource_group, "ops-watcher", f"ops-{secrets.token_hex(3)}")
    body = {"target": vm.vm.arm_id, "timeLimitInSeconds": 120, "storageLocation": {"storageId": STORAGE_ID},
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    assert lab.client.create(capture, body).status_code == 201
    lab.client.wait_for(capture, "Running")
    send(vm, [inbound(vm, "UDP", port + 1, port, payload=100)], repeat=packets)
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [d for d in lab.sink.for_subject(capture.arm_id) if d.answered == 200]:
        time.sleep(0.2)
    assert lab.client.status(capture)["packetWatchStored"] is True
    return capture


def test_every_process_metrics_move_as_a_capture_runs_uploads_and_notifies(lab):
    urls = _urls(lab)
    before = {name: scrape(url) for name, url in urls.items()}
    capture = _capture_with_upload(lab, 7810, 7)
    time.sleep(0.5)
    after = {name: scrape(url) for name, url in urls.items()}
    api, agent, control, notify = (after[n] for n in ("api", "agent", "control", "notify"))
    was = before

    assert moved(was["api"], api, "packetwatch_captures_created_total", source="cli") == 1
    put = dict(api="arm", method="PUT", status="201", route="/subscriptions/{subscriptionId}/resourceGroups/"
               "{resourceGroupName}/providers/Microsoft.Network/networkWatchers/{networkWatcherName}/packetCaptures/"
               "{packetCaptureName}")
    assert moved(was["api"], api, "packetwatch_http_request_duration_seconds_count", **put) == 1
    assert value(api, "packetwatch_captures", status="Stopped") >= 1
    assert value(api, "packetwatch_agents", state="online") >= 2, "the lab's two agents at least"
    assert ("packetwatch_control_queue_messages", frozenset()) in api
    assert ("packetwatch_outbox_messages", frozenset()) in api

    assert moved(was["agent"], agent, "packetwatch_agent_captures_started_total") == 1
    assert moved(was["agent"], agent, "packetwatch_agent_captures_ended_total", status="Stopped",
                 reason="ManuallyStopped") == 1
    assert moved(was["agent"], agent, "packetwatch_agent_packets_captured_total") == 7
    assert moved(was["agent"], agent, "packetwatch_agent_uploads_total", result="stored") == 1
    summary = lab.client.status(capture)["packetWatchSummary"]
    assert moved(was["agent"], agent, "packetwatch_agent_uploaded_bytes_total") == summary["bytes"]
    assert moved(was["agent"], agent, "packetwatch_agent_captured_bytes_total") == summary["bytes"]
    assert value(agent, "packetwatch_agent_info", vm=lab.vm2.vm.arm_id, interface=lab.vm2.vm_if,
                 version=VERSION) == 1

    assert moved(was["control"], control, "packetwatch_capture_events_total", status="Running", reason="") == 1
    assert moved(was["control"], control, "packetwatch_capture_events_total", status="Stopped",
                 reason="ManuallyStopped") == 1
    assert moved(was["control"], control, "packetwatch_uploads_total", result="stored") == 1
    # its Running and Stopped events at least (and any heartbeat that came meanwhile)
    assert moved(was["control"], control, "packetwatch_control_lag_seconds_count") >= 2

    assert moved(was["notify"], notify, "packetwatch_notifications_total", result="delivered") == 1


def test_alerts_are_counted_by_format_and_outcome(lab):
    before = scrape(lab.stack.api_url)
    alerts = f"{lab.stack.api_url}/api/alerts"
    assert httpx.post(f"{alerts}?code=wrong", json={}, timeout=10).status_code == 401
    assert httpx.post(f"{alerts}?code={FUNCTION_KEY}", json={"neither": "alert"}, timeout=10).status_code == 400
    rule = f"OpsCount{secrets.token_hex(3)}"
    payload = azure_common(lab.vm2.vm.arm_id, rule=rule)
    first = httpx.post(f"{alerts}?code={FUNCTION_KEY}", json=payload, timeout=10)
    again = httpx.post(f"{alerts}?code={FUNCTION_KEY}", json=payload, timeout=10)
    assert (first.status_code, again.status_code) == (202, 200)
    lab.client.stop(CaptureId.parse(first.json()["started"][0]["id"]))
    after = scrape(lab.stack.api_url)
    common = "azureMonitorCommonAlertSchema"
    assert moved(before, after, "packetwatch_alerts_total", format="unknown", outcome="refused") == 2
    assert moved(before, after, "packetwatch_alerts_total", format=common, outcome="started") == 1
    assert moved(before, after, "packetwatch_alerts_total", format=common, outcome="deduplicated") == 1
    assert moved(before, after, "packetwatch_captures_created_total", source="alert") == 1
    webhook = dict(api="alerts", method="POST", route="/api/alerts")
    assert moved(before, after, "packetwatch_http_request_duration_seconds_count", status="202", **webhook) == 1
    assert moved(before, after, "packetwatch_http_request_duration_seconds_count", status="401", **webhook) == 1


def _json_lines(path: Path) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]  # JSONDecodeError: a line that is not JSON
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in parsed)
    return parsed


def test_one_capture_is_followed_by_its_id_through_the_json_logs_of_every_process(lab):
    capture = _capture_with_upload(lab, 7820, 3)
    time.sleep(1.0)
    workdir = lab.stack.workdir
    logs = {name: _json_lines(workdir / f"{name}.log") for name in ("api", "control", "notify",
                                                                    f"agent-{lab.vm2.netns}")}
    mine = {name: [entry for entry in entries if entry.get("capture_id") == capture.arm_id]
            for name, entries in logs.items()}
    assert [e["message"] for e in mine["api"] if "created" in e["message"]], "the API logs the creation"
    assert [e["message"] for e in mine["api"] if "stop requested" in e["message"]]
    assert {e["message"].rsplit(" is ", 1)[-1] for e in mine["control"]} >= {"Running", "Stopped (ManuallyStopped)"}
    agent = [e["message"] for e in mine[f"agent-{lab.vm2.netns}"]]
    started = [m for m in agent if " started on " in m]
    assert len(started) == 1 and "'localPort': '7820'" in started[0] and "120 s" in started[0]
    assert [m for m in agent if "stopped (ManuallyStopped): 3 packets" in m]
    assert [m for m in agent if "bytes stored at" in m and "sig=" not in m]
    assert [e for e in mine["notify"] if "delivered" in e["message"]]
    run_ids = {e.get("run_id") for entries in mine.values() for e in entries if e.get("run_id")}
    assert len(run_ids) == 1, "one run, the same ID everywhere"

    info = [e for e in logs["control"] + logs[f"agent-{lab.vm2.netns}"] if e["level"] == "INFO"]
    assert not [e for e in info if "heartbeat" in e["message"].lower()], "heartbeats are not logged at INFO"


def test_task_events_reach_a_celery_event_receiver_as_flower_reads_them(lab):
    app = make_celery("ops-events", lab.stack.broker_url)
    seen: list[dict] = []
    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": seen.append})
        listening = threading.Thread(target=lambda: receiver.capture(limit=None, timeout=40, wakeup=False),
                                     daemon=True)
        listening.start()
        time.sleep(1.0)
        _capture_with_upload(lab, 7830, 2)
        deadline = time.monotonic() + 20
        wanted = {(TaskName.CAPTURE.value, "task-succeeded"), (TaskName.STATUS.value, "task-succeeded"),
                  (TaskName.UPLOAD.value, "task-succeeded"), (TaskName.NOTIFY.value, "task-succeeded")}
        while time.monotonic() < deadline:
            names = {event["uuid"]: event["name"] for event in list(seen) if event.get("name")}
            got = {(names.get(event.get("uuid")), event["type"]) for event in list(seen)}
            if wanted <= got:
                break
            time.sleep(0.2)
        receiver.should_stop = True
    assert wanted <= got, sorted(Tally(event["type"] for event in seen).items())
    hosts = {event["hostname"] for event in seen if event["type"] == "task-succeeded"}
    assert any(host.startswith("packetwatch.agent.") for host in hosts) and any(
        host.startswith("control@") for host in hosts) and any(host.startswith("notify@") for host in hosts)


def test_an_agent_whose_interface_is_missing_lives_but_is_not_ready(lab, tmp_path):
    port = free_port()
    vm = VirtualMachineId(lab.vm1.vm.subscription, "ops-rg", f"noif-{secrets.token_hex(3)}")
    env = {**lab.stack.env(), **lab.stack.agent_env(vm)}
    agent = subprocess.Popen([sys.executable, "-m", "cli.main", "agent", "run", "--vm", vm.arm_id, "--interface",
                              "pwnone0", "--capture-dir", str(tmp_path), "--metrics-port", str(port)],
                             env={k: v for k, v in env.items() if v is not None}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        probe = [sys.executable, "-m", "cli.main", "probe", "--wait", "30"]
        alive = subprocess.run([*probe, f"http://127.0.0.1:{port}/healthz"], capture_output=True, text=True,
                               timeout=60)
        assert alive.returncode == 0, alive.stderr
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"] == "ok" and "pwnone0" in ready.json()["checks"]["interface"]
        refused = subprocess.run([*probe[:-2], f"http://127.0.0.1:{port}/readyz"], capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 1 and "interface" in refused.stdout
        listed = httpx.get(lab.stack.metrics_url(f"agent-{lab.vm1.netns}") + "/readyz", timeout=10)
        assert listed.status_code == 200 and listed.json()["checks"] == {"broker": "ok", "interface": "ok"}
    finally:
        agent.terminate()
        agent.wait(30)
