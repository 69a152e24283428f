"""Azure's own SDK, unchanged, drives PacketWatch over TLS: every packet-capture operation,
long-running ones polled to the end through our Azure-AsyncOperation and Location answers."""

import time

from azure.mgmt.network.models import (
    PacketCapture, PacketCaptureFilter, PacketCaptureSettings, PacketCaptureStorageLocation,
)

from lab.traffic import inbound, send
from tests.e2e.test_continuous import wait_for_files


def test_the_azure_sdk_creates_reads_lists_polls_stops_and_deletes(lab, sdk):
    vm = lab.vm1
    group, watcher, name = vm.vm.resource_group, "sdk-watcher", f"sdk-{int(time.time() * 1000) % 10**8}"
    parameters = PacketCapture(
        target=vm.vm.arm_id, bytes_to_capture_per_packet=128, total_bytes_per_session=10_000_000,
        time_limit_in_seconds=120,
        storage_location=PacketCaptureStorageLocation(file_path=f"/var/captures/e2e/{name}.cap"),
        filters=[PacketCaptureFilter(protocol="UDP", local_port="7500")])
    created = sdk.packet_captures.begin_create(group, watcher, name, parameters).result()
    assert created.name == name and created.target == vm.vm.arm_id
    assert created.filters[0].local_port == "7500" and created.bytes_to_capture_per_packet == 128
    assert created.provisioning_state == "Succeeded"

    stored = lab.client.get(lab_capture(vm, watcher, name)).json()
    fetched = sdk.packet_captures.get(group, watcher, name)
    assert fetched.as_dict() | {"etag": None} == stored | {"etag": None}
    assert {**fetched.as_dict(), "etag": None} == {**created.as_dict(), "etag": None}, "the etag moves with status"
    assert [c.name for c in sdk.packet_captures.list(group, watcher)] == [name]

    deadline = time.monotonic() + 30
    status = sdk.packet_captures.begin_get_status(group, watcher, name).result()
    while status.packet_capture_status != "Running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = sdk.packet_captures.begin_get_status(group, watcher, name).result()
    assert status.packet_capture_status == "Running" and status.capture_start_time is not None

    send(vm, [inbound(vm, "UDP", 7501, 7500, payload=500)], repeat=3)
    sdk.packet_captures.begin_stop(group, watcher, name).result()
    while status.packet_capture_status == "Running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = sdk.packet_captures.begin_get_status(group, watcher, name).result()
    assert (status.packet_capture_status, status.stop_reason) == ("Stopped", "ManuallyStopped")
    assert not status.packet_capture_error
    assert lab.client.status(lab_capture(vm, watcher, name))["packetWatchSummary"]["packets"] == 3

    sdk.packet_captures.begin_delete(group, watcher, name).result()
    assert list(sdk.packet_captures.list(group, watcher)) == []


def test_the_azure_sdk_creates_a_continuous_capture_and_reads_its_files_in_the_status(lab, sdk):
    vm = lab.vm2
    group, watcher, name = vm.vm.resource_group, "sdk-watcher", f"sdk-ring-{int(time.time() * 1000) % 10**8}"
    parameters = PacketCapture(
        target=vm.vm.arm_id, bytes_to_capture_per_packet=128, continuous_capture=True,
        capture_settings=PacketCaptureSettings(file_count=4, file_size_in_bytes=600,
                                               session_time_limit_in_seconds=300),
        storage_location=PacketCaptureStorageLocation(local_path=f"/var/captures/sdk/{name}.cap"),
        filters=[PacketCaptureFilter(protocol="UDP", local_port="7520")])
    created = sdk.packet_captures.begin_create(group, watcher, name, parameters).result()
    assert created.continuous_capture is True and created.capture_settings.file_count == 4
    assert created.storage_location.local_path == f"/var/captures/sdk/{name}.cap"
    deadline = time.monotonic() + 30
    while sdk.packet_captures.begin_get_status(group, watcher, name).result().packet_capture_status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    send(vm, [inbound(vm, "UDP", 7521, 7520, payload=200)], repeat=40)
    sdk.packet_captures.begin_stop(group, watcher, name).result()
    status = sdk.packet_captures.begin_get_status(group, watcher, name).result()
    while status.packet_capture_status == "Running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = sdk.packet_captures.begin_get_status(group, watcher, name).result()
    assert (status.packet_capture_status, status.stop_reason) == ("Stopped", "ManuallyStopped")
    files = wait_for_files(lab, lab_capture(vm, watcher, name), 10)
    assert sum(f["packets"] for f in files) == 40 and [f["index"] for f in files] == list(range(1, 11))
    assert len(lab.client.status(lab_capture(vm, watcher, name))["packetWatchSummary"]["filePaths"]) == 4


def lab_capture(vm, watcher: str, name: str):
    from shared.resource_ids import CaptureId

    return CaptureId(vm.vm.subscription, vm.vm.resource_group, watcher, name)
