"""No secret reaches a log: a function key in `?code=`, bearer tokens, storage account keys
(uploads through a connection string), webhook secrets and SAS signatures. Every process
of the stack writes its log to the lab's folder; after traffic that uses each secret,
none of them is found there."""

import secrets
import time

import httpx

from cli.azurite import ACCOUNT_KEY
from lab.stack import STORAGE_ID
from lab.traffic import inbound, send
from shared.resource_ids import CaptureId
from tests.e2e.conftest import FUNCTION_KEY, NOTIFY_SECRET, WRONG_KEY


def test_no_log_line_of_any_process_holds_a_secret(lab):
    vm = lab.vm1
    refused = httpx.post(f"{lab.stack.api_url}/api/alerts?code=not-the-{FUNCTION_KEY}", json={}, timeout=10)
    assert refused.status_code == 401
    rule = f"secrets-{secrets.token_hex(3)}"
    alert = {"target": vm.vm.arm_id, "rule": rule, "state": "firing",
             "capture": {"storageId": STORAGE_ID, "filters": [{"protocol": "UDP", "localPort": "7700"}]}}
    answer = httpx.post(f"{lab.stack.api_url}/api/alerts?code={FUNCTION_KEY}", json=alert, timeout=10)
    assert answer.status_code == 202, answer.text
    capture = CaptureId.parse(answer.json()["started"][0]["id"])
    lab.client.wait_for(capture, "Running")
    send(vm, [inbound(vm, "UDP", 7701, 7700)], repeat=3)
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not lab.client.download_url(capture).json().get("url"):
        time.sleep(0.2)
    sas = lab.client.download_url(capture).json()["url"]
    signature = httpx.QueryParams(sas.split("?", 1)[1])["sig"]
    assert httpx.get(f"{lab.stack.api_url}/healthz?sig={signature}&code={FUNCTION_KEY}").status_code == 200
    while time.monotonic() < deadline and not lab.sink.for_subject(capture.arm_id):
        time.sleep(0.2)
    time.sleep(1.0)  # the access log line of the last request

    logs = {path.name: path.read_text(errors="replace") for path in lab.stack.workdir.glob("*.log")}
    assert "api.log" in logs and any(name.startswith("agent-") for name in logs)
    assert "code=REDACTED" in logs["api.log"], "the access log still shows the request, without the key"
    for secret in (FUNCTION_KEY, lab.stack.token, ACCOUNT_KEY, WRONG_KEY, NOTIFY_SECRET, signature):
        leaks = [name for name, text in logs.items() if secret in text]
        assert leaks == [], f"a secret appears in {leaks}"
