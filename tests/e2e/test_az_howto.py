"""The Azure CLI how-to for packet captures, run through `packetwatch` with only resource
names and `az` replaced, against a real agent on a netns VM whose agent reports its region
(eastus): each command's output is checked, as are az's output formats, --query, exit
codes and error lines, and the Azure SDK's network_watchers operations."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from lab.traffic import inbound, send
from lab.vms import LabVm, create_vms, remove_vms
from tests.e2e.conftest import tshark_records

REGION = "eastus"
GROUP = "myResourceGroup"


@pytest.fixture(scope="module")
def howto_vm(lab) -> Iterator[LabVm]:
    [vm] = create_vms(1, resource_group=GROUP)
    try:
        lab.stack.start_agent(vm, "--location", REGION)
        yield vm
    finally:
        lab.stack.stop(f"agent-{vm.netns}")
        remove_vms([vm])


def az(lab, *args: str) -> subprocess.CompletedProcess:
    env = {"PACKETWATCH_API_URL": lab.stack.api_url, "PACKETWATCH_TOKEN": lab.stack.token,
           "PACKETWATCH_SUBSCRIPTION": lab.vm1.vm.subscription, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def ok(result: subprocess.CompletedProcess):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_the_how_to_runs_unchanged_but_for_names(lab, howto_vm, tmp_path):
    vm = howto_vm.vm.name
    # az vm extension show --resource-group 'myResourceGroup' --vm-name 'myVM' --name 'NetworkWatcherAgentLinux'
    extension = ok(az(lab, "vm", "extension", "show", "--resource-group", GROUP, "--vm-name", vm,
                      "--name", "NetworkWatcherAgentLinux"))
    assert (extension["name"], extension["provisioningState"], extension["publisher"], extension["location"]) == (
        "NetworkWatcherAgentLinux", "Succeeded", "Microsoft.Azure.NetworkWatcher", REGION)
    assert extension["id"] == f"{howto_vm.vm.arm_id}/extensions/NetworkWatcherAgentLinux"
    assert extension["resourceGroup"] == GROUP

    watchers = ok(az(lab, "network", "watcher", "list"))
    regional = [w for w in watchers if w["location"] == REGION]
    assert [(w["name"], w["resourceGroup"]) for w in regional] == [("NetworkWatcher_eastus", "NetworkWatcherRG")]

    # az network watcher packet-capture create --resource-group 'myResourceGroup' --vm 'myVM' --name 'myVM_1'
    #     --storage-account 'mystorageaccount'
    made = ok(az(lab, "network", "watcher", "packet-capture", "create", "--resource-group", GROUP, "--vm", vm,
                 "--name", "myVM_1", "--storage-account", "devstoreaccount1"))
    assert made["name"] == "myVM_1" and made["resourceGroup"] == "NetworkWatcherRG"
    assert made["target"] == howto_vm.vm.arm_id and made["provisioningState"] == "Succeeded"
    assert made["storageLocation"]["storageId"].endswith("/storageAccounts/devstoreaccount1")
    assert made["id"].endswith("/networkWatchers/NetworkWatcher_eastus/packetCaptures/myVM_1")
    # ... with a file on the VM and filters
    filters = '[{"protocol":"UDP", "localPort":"7600"}, {"protocol":"TCP", "remoteIPAddress":"198.18.0.0-198.19.255.255"}]'
    ok(az(lab, "network", "watcher", "packet-capture", "create", "--resource-group", GROUP, "--vm", vm,
          "--name", "myVM_2", "--file-path", "/var/captures/myVM_2.cap", "--filters", filters, "--time-limit", "120"))

    # az network watcher packet-capture show-status --location 'eastus' --name 'myVM_1'
    deadline = time.monotonic() + 30
    while ok(az(lab, "network", "watcher", "packet-capture", "show-status", "--location", REGION,
                "--name", "myVM_2"))["packetCaptureStatus"] != "Running":
        assert time.monotonic() < deadline
    send(howto_vm, [inbound(howto_vm, "UDP", 41000, 7600, payload=32), inbound(howto_vm, "UDP", 41000, 7601)],
         repeat=5)
    deadline = time.monotonic() + 30
    while True:  # while it runs, the packets its agent's heartbeat reported
        live = ok(az(lab, "network", "watcher", "packet-capture", "show-status", "-l", REGION, "-n", "myVM_2"))
        if live["packetWatchSummary"]["packets"] == 5 if live.get("packetWatchSummary") else False:
            break
        assert time.monotonic() < deadline, live
        time.sleep(0.5)
    assert live["packetCaptureStatus"] == "Running" and live["packetWatchSummary"]["bytes"] >= 24 + 5 * (16 + 74)
    listed = ok(az(lab, "network", "watcher", "packet-capture", "list", "--location", REGION))
    assert sorted(c["name"] for c in listed) == ["myVM_1", "myVM_2"]
    table = az(lab, "network", "watcher", "packet-capture", "list", "-l", REGION, "-o", "table")
    assert table.returncode == 0 and "myVM_1" in table.stdout and "ResourceGroup" in table.stdout
    names = ok(az(lab, "network", "watcher", "packet-capture", "list", "-l", REGION, "--query", "[].name"))
    assert sorted(names) == ["myVM_1", "myVM_2"]
    tsv = az(lab, "network", "watcher", "packet-capture", "show", "-l", REGION, "-n", "myVM_2", "--query", "name",
             "-o", "tsv")
    assert tsv.stdout == "myVM_2\n"
    shown = yaml.safe_load(az(lab, "network", "watcher", "packet-capture", "show", "-l", REGION, "-n", "myVM_2",
                              "-o", "yaml").stdout)
    assert shown["storageLocation"]["filePath"] == "/var/captures/myVM_2.cap" and shown["timeLimitInSeconds"] == 120

    # az network watcher packet-capture stop --location 'eastus' --name 'myVM_1'
    for name in ("myVM_1", "myVM_2"):
        stopped = az(lab, "network", "watcher", "packet-capture", "stop", "--location", REGION, "--name", name)
        assert stopped.returncode == 0 and stopped.stdout == "", stopped.stderr
    watched = az(lab, "network", "watcher", "packet-capture", "show-status", "-l", REGION, "-n", "myVM_2", "--watch",
                 "--interval", "0.2")
    final = ok(watched)
    assert final["packetCaptureStatus"] == "Stopped" and final["stopReason"] == "ManuallyStopped"
    assert "packets" in watched.stderr and "time limit 120 s" in watched.stderr, "the live line"
    path = Path(final["packetWatchSummary"]["filePaths"][0])
    assert [r[:5] for r in tshark_records(path)] == [("UDP", str(howto_vm.peer), str(howto_vm.address), 41000,
                                                      7600)] * 5
    assert ok(az(lab, "network", "watcher", "packet-capture", "wait", "-l", REGION, "-n", "myVM_2", "--custom",
                 "storageLocation.filePath=='/var/captures/myVM_2.cap'", "--interval", "1")) is None

    # az network watcher packet-capture delete --location 'eastus' --name 'myVM_1'
    for name in ("myVM_1", "myVM_2"):
        assert az(lab, "network", "watcher", "packet-capture", "delete", "--location", REGION,
                  "--name", name).returncode == 0
    assert ok(az(lab, "network", "watcher", "packet-capture", "wait", "-l", REGION, "-n", "myVM_1", "--deleted",
                 "--interval", "1")) is None
    gone = az(lab, "network", "watcher", "packet-capture", "show", "--location", REGION, "--name", "myVM_1")
    assert gone.returncode == 3 and gone.stderr.startswith("ERROR: (NotFound)"), gone.stderr


def test_storage_path_names_the_container_the_capture_is_stored_in(lab, howto_vm):
    container = lab.azurite.account_url.rstrip("/") + "/howto-caps"
    made = ok(az(lab, "network", "watcher", "packet-capture", "create", "-g", GROUP, "--vm", howto_vm.vm.name,
                 "-n", "myVM_3", "--storage-account", "devstoreaccount1", "--storage-path", container,
                 "--time-limit", "60"))
    assert made["storageLocation"]["storagePath"].startswith(container + "/subscriptions/"), "as az shows it from create"
    deadline = time.monotonic() + 30
    while ok(az(lab, "network", "watcher", "packet-capture", "show-status", "-l", REGION,
                "-n", "myVM_3"))["packetCaptureStatus"] != "Running":
        assert time.monotonic() < deadline
    assert az(lab, "network", "watcher", "packet-capture", "stop", "-l", REGION, "-n", "myVM_3").returncode == 0
    while not ok(az(lab, "network", "watcher", "packet-capture", "show-status", "-l", REGION,
                    "-n", "myVM_3")).get("packetWatchStored"):
        assert time.monotonic() < deadline + 60
    stored = ok(az(lab, "network", "watcher", "packet-capture", "show", "-l", REGION, "-n", "myVM_3"))
    assert stored["storageLocation"]["storagePath"] == made["storageLocation"]["storagePath"]
    blob = stored["storageLocation"]["storagePath"].split("/howto-caps/", 1)[1]
    service = BlobServiceClient.from_connection_string(lab.azurite.connection_string)
    assert service.get_blob_client("howto-caps", blob).download_blob().readall()[:4] == bytes.fromhex("d4c3b2a1")
    wrong = az(lab, "network", "watcher", "packet-capture", "create", "-g", GROUP, "--vm", howto_vm.vm.name,
               "-n", "myVM_4", "--storage-account", "devstoreaccount1", "--storage-path", "https://x/Not_A_Container")
    assert wrong.returncode == 1 and "storageLocation.storagePath" in wrong.stderr
    assert az(lab, "network", "watcher", "packet-capture", "delete", "-l", REGION, "-n", "myVM_3").returncode == 0


def test_errors_and_exit_codes_are_azs(lab, howto_vm):
    usage = az(lab, "network", "watcher", "packet-capture", "show", "--location", REGION)
    assert usage.returncode == 2 and "--name/-n" in usage.stderr
    nowhere = az(lab, "network", "watcher", "packet-capture", "list", "--location", "westus")
    assert nowhere.returncode == 1 and "network watcher is not enabled for region 'westus'" in nowhere.stderr
    no_agent = az(lab, "vm", "extension", "show", "-g", GROUP, "--vm-name", "nobody", "-n", "NetworkWatcherAgentLinux")
    assert no_agent.returncode == 3 and "(ResourceNotFound)" in no_agent.stderr
    bad = az(lab, "network", "watcher", "packet-capture", "create", "-g", GROUP, "--vm", howto_vm.vm.name, "-n", "bad",
             "--file-path", "/etc/passwd.cap")
    assert bad.returncode == 1 and "storageLocation.filePath" in bad.stderr
    env_api = subprocess.run([sys.executable, "-m", "cli.main", "network", "watcher", "list"], capture_output=True,
                             text=True, timeout=60, env={"PACKETWATCH_API_URL": "http://127.0.0.1:9",
                                                         "PACKETWATCH_TOKEN": "t", "PACKETWATCH_SUBSCRIPTION": "s",
                                                         "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert env_api.returncode == 1 and "http://127.0.0.1:9" in env_api.stderr
    helped = az(lab, "network", "watcher", "packet-capture", "create", "--help")
    assert helped.returncode == 0 and "Examples" in helped.stdout and "--storage-account" in helped.stdout


def test_the_azure_sdk_lists_and_gets_network_watchers(lab, howto_vm, sdk):
    watchers = {w.name: w for w in sdk.network_watchers.list_all()}
    assert watchers["NetworkWatcher_eastus"].location == REGION
    got = sdk.network_watchers.get("NetworkWatcherRG", "NetworkWatcher_eastus")
    assert got.id.endswith("/networkWatchers/NetworkWatcher_eastus") and got.provisioning_state == "Succeeded"
    assert [w.name for w in sdk.network_watchers.list("NetworkWatcherRG")].count("NetworkWatcher_eastus") == 1
