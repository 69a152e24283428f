"""The packetwatch CLI against the running stack: az's commands and flags, JSON by default
and -o table, a non-zero exit with one line on every error."""

import json
import secrets
import subprocess
import sys
import time

from lab.traffic import inbound, send


def _cli(lab, *args: str) -> subprocess.CompletedProcess:
    env = {"PACKETWATCH_API_URL": lab.stack.api_url, "PACKETWATCH_TOKEN": lab.stack.token,
           "PACKETWATCH_SUBSCRIPTION": lab.vm1.vm.subscription, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def _status(lab, name: str, group: str) -> str:
    result = _cli(lab, "packet-capture", "show-status", "-n", name, "-g", group)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["packetCaptureStatus"]


def test_create_show_list_stop_delete_with_az_flags(lab, tmp_path):
    vm, group, name = lab.vm1, lab.vm1.vm.resource_group, f"cli-{secrets.token_hex(3)}"
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps([{"protocol": "UDP", "localPort": "7600"}]))
    made = _cli(lab, "packet-capture", "create", "-g", group, "--vm", vm.vm.name, "-n", name,
                "--file-path", f"/var/captures/e2e/{name}.cap", "--time-limit", "120", "--capture-size", "96",
                "--filters", f"@{filters}")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["name"] == name and created["properties"]["target"] == vm.vm.arm_id
    assert created["properties"]["filters"] == [{"protocol": "UDP", "localPort": "7600"}]
    assert created["properties"]["totalBytesPerSession"] == 1073741824, "az's default --capture-limit"

    table = _cli(lab, "packet-capture", "show", "-g", group, "-n", name, "-o", "table")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:2] == ["Name", "Target"]
    assert name in table.stdout.splitlines()[2]
    listed = _cli(lab, "packet-capture", "list", "-g", group)
    assert name in [c["name"] for c in json.loads(listed.stdout)]

    deadline = time.monotonic() + 30
    while _status(lab, name, group) != "Running" and time.monotonic() < deadline:
        time.sleep(0.2)
    send(vm, [inbound(vm, "UDP", 7601, 7600, payload=200)], repeat=4)
    assert _cli(lab, "packet-capture", "stop", "-g", group, "-n", name).returncode == 0
    while _status(lab, name, group) != "Stopped" and time.monotonic() < deadline:
        time.sleep(0.2)
    status = _cli(lab, "packet-capture", "show-status", "-g", group, "-n", name, "-o", "table").stdout.splitlines()
    assert status[0].split() == ["Name", "Status", "StartTime", "StopReason", "Errors", "Packets"]
    assert status[2].split()[1] == "Stopped" and status[2].split()[-1] == "4"

    assert _cli(lab, "packet-capture", "delete", "-g", group, "-n", name).returncode == 0
    gone = _cli(lab, "packet-capture", "show", "-g", group, "-n", name)
    assert gone.returncode != 0 and gone.stderr.count("\n") == 1 and "NotFound" in gone.stderr


def test_every_error_is_one_line_and_a_non_zero_exit(lab):
    group = lab.vm1.vm.resource_group
    bad_filter = _cli(lab, "packet-capture", "create", "-g", group, "--vm", lab.vm1.vm.name, "-n", "bad",
                      "--file-path", "/var/captures/bad.cap", "--filters", '[{"localPort": "80-70"}]')
    assert bad_filter.returncode != 0 and bad_filter.stderr.count("\n") == 1
    assert "properties.filters[0].localPort" in bad_filter.stderr
    no_storage = _cli(lab, "packet-capture", "create", "-g", group, "--vm", lab.vm1.vm.name, "-n", "bad")
    assert no_storage.returncode != 0 and "--storage-account, --file-path" in no_storage.stderr
    not_json = _cli(lab, "packet-capture", "create", "-g", group, "--vm", lab.vm1.vm.name, "-n", "bad",
                    "--file-path", "/var/captures/bad.cap", "--filters", "tcp port 80")
    assert not_json.returncode != 0 and not_json.stderr.startswith("packetwatch: --filters: not JSON")
    unreachable = subprocess.run([sys.executable, "-m", "cli.main", "packet-capture", "list", "-g", group,
                                  "--subscription", "s", "--token", "t", "--api", "http://127.0.0.1:1"],
                                 capture_output=True, text=True, timeout=60)
    assert unreachable.returncode != 0 and unreachable.stderr.count("\n") == 1


def test_agent_show_lists_the_agents_that_report_in_and_marks_silent_ones_offline(lab):
    from datetime import datetime, timedelta, timezone

    from shared.messages import Heartbeat
    from shared.registry import Registry

    gone = lab.vm1.vm.arm_id.replace(lab.vm1.vm.name, "decommissioned")
    heard = datetime.now(timezone.utc) - timedelta(minutes=5)
    Registry.from_url(lab.stack.database_url).record_heartbeat(
        Heartbeat(vm_id=gone, version="0.1.0", hostname="old", reported_at=heard), heard)
    result = _cli(lab, "agent", "show", "-o", "table")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["VM", "Status", "Version", "Host", "Interface", "LastSeen", "Running"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows[lab.vm1.vm.arm_id][1] == rows[lab.vm2.vm.arm_id][1] == "online"
    assert rows[lab.vm1.vm.arm_id][4] == lab.vm1.vm_if, "each agent reports the interface it captures on"
    assert rows[gone][1] == "offline"


def test_a_continuous_capture_with_az_flags_and_its_settings_checked_and_a_look_back(lab):
    vm, group, name = lab.vm1, lab.vm1.vm.resource_group, f"cli-ring-{secrets.token_hex(3)}"
    made = _cli(lab, "packet-capture", "create", "-g", group, "--vm", vm.vm.name, "-n", name,
                "--local-path", f"/var/captures/e2e/{name}.cap", "--continuous-capture", "false",
                "--capture-settings", "file-count=3", "file-size-in-bytes=1000000",
                "session-time-limit-in-seconds=60", "--capture-size", "128", "--look-back-seconds", "20")
    assert made.returncode == 0, made.stderr
    properties = json.loads(made.stdout)["properties"]
    assert properties["lookBackSeconds"] == 20
    assert properties["continuousCapture"] is False and properties["storageLocation"] == {
        "localPath": f"/var/captures/e2e/{name}.cap"}
    assert properties["captureSettings"] == {"fileCount": 3, "fileSizeInBytes": 1000000,
                                             "sessionTimeLimitInSeconds": 60}
    assert _cli(lab, "packet-capture", "delete", "-g", group, "-n", name).returncode == 0
    wrong = _cli(lab, "packet-capture", "create", "-g", group, "--vm", vm.vm.name, "-n", name,
                 "--local-path", f"/var/captures/e2e/{name}.cap", "--continuous-capture", "true",
                 "--capture-settings", "files=3")
    assert wrong.returncode == 2 and "--capture-settings" in wrong.stderr and "file-count" in wrong.stderr


def test_a_short_form_is_azs_command_with_the_watcher_named_and_the_apis_shape(lab):
    vm, group, name = lab.vm1, lab.vm1.vm.resource_group, f"cli-alias-{secrets.token_hex(3)}"
    made = _cli(lab, "packet-capture", "create", "-g", group, "--vm", vm.vm.name, "-n", name,
                "--file-path", f"/var/captures/e2e/{name}.cap", "--time-limit", "30")
    assert made.returncode == 0, made.stderr
    short = json.loads(_cli(lab, "packet-capture", "show", "-g", group, "-n", name).stdout)
    az = _cli(lab, "network", "watcher", "packet-capture", "show", "-g", group, "--watcher", "PacketWatch", "-n", name)
    assert az.returncode == 0, az.stderr
    flattened = {key: value for key, value in short.items() if key != "properties"} | short["properties"]
    assert json.loads(az.stdout) == flattened | {"resourceGroup": group}, "az prints the same capture, flattened"
    listed = _cli(lab, "network", "watcher", "packet-capture", "list", "-g", group, "--watcher", "PacketWatch")
    assert name in [capture["name"] for capture in json.loads(listed.stdout)]
    assert _cli(lab, "packet-capture", "wait", "-g", group, "-n", name, "--created", "--interval", "1").returncode == 0
    assert _cli(lab, "network", "watcher", "packet-capture", "delete", "-g", group, "--watcher", "PacketWatch",
                "-n", name).returncode == 0
    gone = _cli(lab, "network", "watcher", "packet-capture", "show", "-g", group, "--watcher", "PacketWatch", "-n", name)
    assert gone.returncode == 3 and gone.stderr.startswith("ERROR: (NotFound)")
