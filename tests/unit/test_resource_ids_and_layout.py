from datetime import datetime, timezone

import pytest

from shared.errors import InvalidField
from shared.resource_ids import CaptureId, VirtualMachineId, validate_name
from shared.storage_layout import blob_path, capture_file_name, relative_capture_path

VM = "/subscriptions/SUB-1/resourceGroups/My-RG/providers/Microsoft.Compute/virtualMachines/Web01"


def test_vm_ids_compare_case_insensitively():
    lower = VM.lower().replace("resourcegroups", "resourcegroups")
    assert VirtualMachineId.parse(VM) == VirtualMachineId.parse(lower)
    assert len({VirtualMachineId.parse(VM), VirtualMachineId.parse(lower)}) == 1


@pytest.mark.parametrize("text", [
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/extra",
    "subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    "/subscriptions/s/resourceGroups/../providers/Microsoft.Compute/virtualMachines/vm",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm;rm -rf",
])
def test_non_vm_targets_are_refused_with_the_field_named(text):
    with pytest.raises(InvalidField) as error:
        VirtualMachineId.parse(text, "properties.target")
    assert error.value.field == "properties.target"


@pytest.mark.parametrize("name, ok", [
    ("pc1", True), ("a", True), ("web_01-capture.v2_", True), ("x" * 80, True), ("x" * 81, False),
    ("-lead", False), ("trail.", False), ("has space", False), ("../etc", False), ("", False),
])
def test_capture_names_follow_arm_rules(name, ok):
    if ok:
        assert validate_name("name", name) == name
    else:
        with pytest.raises(InvalidField):
            validate_name("name", name)


def test_capture_id_round_trips_through_its_arm_id():
    capture = CaptureId("sub", "rg1", "nw1", "pc1")
    assert CaptureId.parse(capture.arm_id) == capture
    assert capture.arm_id == "/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1/packetCaptures/pc1"


def test_file_and_blob_names_follow_network_watcher_layout():
    created = datetime(2026, 3, 4, 5, 6, 7, 89_000, tzinfo=timezone.utc)
    assert capture_file_name(created) == "packetcapture_05_06_07_089.cap"
    assert blob_path(VirtualMachineId.parse(VM), created) == (
        "subscriptions/sub-1/resourcegroups/my-rg/providers/microsoft.compute/virtualmachines/web01/"
        "2026/03/04/packetcapture_05_06_07_089.cap")


@pytest.mark.parametrize("path, relative", [
    ("/var/captures/pc1.cap", "pc1.cap"),
    ("/var/captures/team/a/pc1.cap", "team/a/pc1.cap"),
    ("/var/captures//x/./pc1.cap", "x/pc1.cap"),
])
def test_file_paths_inside_the_capture_root(path, relative):
    assert relative_capture_path(path, "/var/captures") == relative


@pytest.mark.parametrize("path, fragment", [
    ("/etc/passwd.cap", "under the capture root"),
    ("/var/capturesX/a.cap", "under the capture root"),
    ("/var/captures/../etc/a.cap", "'..'"),
    ("/var/captures/a.pcap", "ending in .cap"),
    ("/var/captures/.cap", "ending in .cap"),
    ("var/captures/a.cap", "absolute path"),
    ("D:\\capture\\pc1.cap", "absolute path"),
    ("/var/captures/a\x00.cap", "absolute path"),
    ("/var/captures/.spool/a.cap", "spool"),
])
def test_file_paths_that_leave_the_root_or_are_not_cap_files_are_refused(path, fragment):
    with pytest.raises(InvalidField) as error:
        relative_capture_path(path, "/var/captures")
    assert error.value.field == "storageLocation.filePath"
    assert fragment in str(error.value)


def test_alert_capture_names_are_legal_arm_names_whatever_the_rule_is_called():
    from functions.alert_service import capture_name

    at = datetime(2026, 11, 22, 2, 45, 12, 123456, tzinfo=timezone.utc)
    vm = VirtualMachineId.parse(VM)
    assert capture_name("HighCpu", vm, at) == "HighCpu-Web01-20261122T024512.123Z"
    for rule in ["CPU > 90% on web/*", "..", "日本語のルール", "x" * 200, "-lead"]:
        name = capture_name(rule, vm, at)
        assert validate_name("name", name) == name
