"""An alert fires; the capture runs on the VM the alert names, and holds that VM's traffic."""

import collections
from pathlib import Path

import httpx

from lab.traffic import inbound, outbound, send
from shared.resource_ids import CaptureId
from tests import alert_samples as s
from tests.e2e.conftest import FUNCTION_KEY, tshark_records


def test_azure_and_alertmanager_alerts_capture_on_their_own_vm(lab):
    vm1, vm2 = lab.vm1, lab.vm2
    answers = {
        vm1.netns: httpx.post(f"{lab.stack.api_url}/api/alerts", json=s.azure_common(vm1.vm.arm_id, rule="E2eCpu"),
                              headers={"x-functions-key": FUNCTION_KEY}, timeout=10),
        vm2.netns: httpx.post(f"{lab.stack.api_url}/api/alerts?code={FUNCTION_KEY}",
                              json=s.alertmanager({"vm_resource_id": vm2.vm.arm_id}, alertname="E2eLoss"),
                              timeout=10),
    }
    captures = {}
    for vm in (vm1, vm2):
        answer = answers[vm.netns]
        assert answer.status_code == 202, answer.text
        [started] = answer.json()["started"]
        assert started["target"].lower() == vm.vm.key
        captures[vm.netns] = CaptureId.parse(started["id"])
        lab.client.wait_for(captures[vm.netns], "Running")

    traffic = {vm.netns: [inbound(vm, "TCP", 40000 + i, 443) for i in range(3)] + [outbound(vm, "UDP", 5000, 53)]
               for vm in (vm1, vm2)}
    for vm in (vm1, vm2):
        send(vm, traffic[vm.netns], repeat=5)
    for vm in (vm1, vm2):
        lab.client.stop(captures[vm.netns])
    for vm in (vm1, vm2):
        status = lab.client.wait_for(captures[vm.netns], "Stopped", timeout=15)
        path = Path(status["packetWatchSummary"]["filePaths"][0])
        assert path.is_relative_to(lab.stack.capture_dir(vm) / "alerts")
        seen = collections.Counter(record[:5] for record in tshark_records(path))
        sent = collections.Counter(f.five_tuple for f in traffic[vm.netns] * 5)
        assert seen == sent
