"""The packet-capture commands' operations, one per verb, under both forms of the one command
table (loader.py): az's (`packetwatch network watcher packet-capture …`, the watcher found
by region as az finds it) and its short aliases (`packetwatch packet-capture …`, the watcher
named with -g and --watcher). Each takes the flags as az names them, calls the typed client
and returns its models; the form decides how they are printed (forms.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
from knack.util import CLIError

from cli.arm_client import ApiError
from cli.az.connection import Connection
from cli.az.shapes import EXTENSION, vm_extension
from cli.capture_body import CaptureFlags, CliError
from shared.api_views import AgentView, NetworkWatcher
from shared.arm import (
    DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_TIME_LIMIT_SECONDS, PacketCaptureParameters, PacketCaptureQueryStatusResult,
    PacketCaptureResult, PcStatus,
)
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId

ACTIVE = (PcStatus.NOT_STARTED, PcStatus.RUNNING)


def _regional_watcher(connection: Connection, location: str) -> tuple[str, str]:
    """(resource group, name) of the region's network watcher, found as az finds it."""
    for watcher in connection.client.watchers(connection.subscription):
        if watcher.location.lower() == location.lower().replace(" ", ""):
            return watcher.resource_group, watcher.name
    raise CLIError(f"network watcher is not enabled for region '{location}'.")


def _capture(connection: Connection, name: str, location: str | None, resource_group_name: str | None,
             watcher: str | None) -> CaptureId:
    """The capture in the watcher named (--watcher in -g), else in the region's (-l)."""
    if watcher is not None:
        if not resource_group_name:
            raise CLIError("usage error: --watcher is a watcher in --resource-group/-g")
        return CaptureId(connection.subscription, resource_group_name, watcher, name)
    if location is None:
        raise CLIError("usage error: --location/-l (the region's watcher), or -g with --watcher")
    return CaptureId(connection.subscription, *_regional_watcher(connection, location), name)


def _id_of(kind: type[VirtualMachineId] | type[ScaleSetId], value: str, subscription: str, group: str,
           flag: str) -> str:
    return kind.parse(value, flag).arm_id if value.startswith("/") else kind(subscription, group, value).arm_id


def _id_of_account(value: str, subscription: str, group: str) -> str:
    """--storage-account: an ID, or a name in the command's resource group (as az resolves it)."""
    if value.startswith("/"):
        return value
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{value}"


def _location_of(connection: Connection, target: str) -> str:
    """The region of a VM (or scale set) from its agent(s), as az reads the VM's location."""
    key = target.lower()
    for agent in connection.client.agents():
        if agent.location and (agent.vm.lower() == key or agent.vm.lower().startswith(key + "/")):
            return agent.location
    raise CLIError(f"cannot tell the region of {target}: no agent of it reports one; give --location")


# az create's flags as its operations name them (create_packet_capture, queue submit's).
CREATE_FLAGS = ("vm", "target", "target_type", "storage_account", "storage_path", "file_path", "local_path",
                "capture_size", "capture_limit", "time_limit", "filters", "include", "exclude", "continuous_capture",
                "capture_settings", "look_back_seconds")


def create_parameters(subscription: str, resource_group_name: str, given: dict[str, Any]) -> PacketCaptureParameters:
    """The PUT's parameters from az create's flags in `given` (an operation's arguments): the
    target (a name in -g, or an ID) and the storage account resolved."""
    flags = {name: given[name] for name in CREATE_FLAGS}
    vm, target, storage_account = flags.pop("vm"), flags.pop("target"), flags.pop("storage_account")
    named = target or vm
    if not named:
        raise CliError("give --vm (or --target): the VM, or with --target-type AzureVMSS the scale set")
    kind = ScaleSetId if flags["target_type"] == "AzureVMSS" else VirtualMachineId
    target_id = _id_of(kind, named, subscription, resource_group_name, "--target" if target else "--vm")
    if not (storage_account or flags["storage_path"] or flags["file_path"] or flags["local_path"]):
        raise CliError("give --storage-account, --file-path (or --local-path with --continuous-capture)")
    account = _id_of_account(storage_account, subscription, resource_group_name) if storage_account else None
    return CaptureFlags(target=target_id, storage_account=account, **flags).parameters()


def create_packet_capture(resource_group_name: str, capture_name: str, vm: str | None = None,
                          target: str | None = None, target_type: str | None = None, location: str | None = None,
                          storage_account: str | None = None, storage_path: str | None = None,
                          file_path: str | None = None, capture_size: int = 0,
                          capture_limit: int = DEFAULT_TOTAL_BYTES_PER_SESSION,
                          time_limit: int = MAX_TIME_LIMIT_SECONDS, filters: str | None = None,
                          include: list[str] | None = None, exclude: list[str] | None = None,
                          continuous_capture: str | None = None, capture_settings: list[str] | None = None,
                          local_path: str | None = None, look_back_seconds: int | None = None,
                          watcher: str | None = None, subscription: str | None = None, api: str | None = None,
                          token: str | None = None) -> PacketCaptureResult:
    connection = Connection.open(subscription, api, token)
    parameters = create_parameters(connection.subscription, resource_group_name, locals())
    if watcher is None and location is None:
        location = _location_of(connection, parameters.target)
    capture = _capture(connection, capture_name, location, resource_group_name, watcher)
    return connection.client.create(capture, parameters)


def show_packet_capture(capture_name: str, location: str | None = None, resource_group_name: str | None = None,
                        watcher: str | None = None, subscription: str | None = None, api: str | None = None,
                        token: str | None = None) -> PacketCaptureResult:
    connection = Connection.open(subscription, api, token)
    return connection.client.get(_capture(connection, capture_name, location, resource_group_name, watcher))


def list_packet_captures(location: str | None = None, resource_group_name: str | None = None,
                         watcher: str | None = None, subscription: str | None = None, api: str | None = None,
                         token: str | None = None) -> list[PacketCaptureResult]:
    connection = Connection.open(subscription, api, token)
    return connection.client.list(_capture(connection, "x", location, resource_group_name, watcher))


def stop_packet_capture(capture_name: str, location: str | None = None, resource_group_name: str | None = None,
                        watcher: str | None = None, subscription: str | None = None, api: str | None = None,
                        token: str | None = None) -> None:
    connection = Connection.open(subscription, api, token)
    connection.client.stop(_capture(connection, capture_name, location, resource_group_name, watcher))


def delete_packet_capture(capture_name: str, location: str | None = None, resource_group_name: str | None = None,
                          watcher: str | None = None, subscription: str | None = None, api: str | None = None,
                          token: str | None = None) -> None:
    connection = Connection.open(subscription, api, token)
    connection.client.delete(_capture(connection, capture_name, location, resource_group_name, watcher))


def _live_line(status: PacketCaptureQueryStatusResult, time_limit: int, began: float) -> str:
    summary = status.summary
    state = status.packet_capture_status.value if status.packet_capture_status else None
    return (f"{state}: {summary.packets if summary else 0} packets, {summary.bytes if summary else 0} bytes, "
            f"{time.monotonic() - began:.0f} s elapsed, time limit {time_limit} s")


def show_packet_capture_status(capture_name: str, location: str | None = None,
                               resource_group_name: str | None = None, watcher: str | None = None,
                               watch: bool = False, interval: float = 1.0, subscription: str | None = None,
                               api: str | None = None, token: str | None = None) -> PacketCaptureQueryStatusResult:
    connection = Connection.open(subscription, api, token)
    capture = _capture(connection, capture_name, location, resource_group_name, watcher)
    status = connection.client.query_status(capture)
    if not watch:
        return status
    properties = connection.client.get(capture).properties
    time_limit = properties.seconds_limit if properties else MAX_TIME_LIMIT_SECONDS
    began = time.monotonic()
    while status.packet_capture_status in ACTIVE:
        print(f"\r{_live_line(status, time_limit, began)}", end="", file=sys.stderr, flush=True)
        time.sleep(interval)
        status = connection.client.query_status(capture)
    print(f"\r{_live_line(status, time_limit, began)}", file=sys.stderr, flush=True)
    return status


def wait_packet_capture(capture_name: str, location: str | None = None, resource_group_name: str | None = None,
                        watcher: str | None = None, created: bool = False, exists: bool = False,
                        deleted: bool = False, custom: str | None = None, interval: int = 30, timeout: int = 3600,
                        subscription: str | None = None, api: str | None = None, token: str | None = None) -> None:
    """az's generic wait: poll the capture (as `show` prints it) until the condition holds."""
    import jmespath

    from cli.az.shapes import flattened

    if sum(bool(c) for c in (created, exists, deleted, custom)) != 1:
        raise CLIError("usage error: give one of --created, --exists, --deleted, --custom")
    connection = Connection.open(subscription, api, token)
    capture = _capture(connection, capture_name, location, resource_group_name, watcher)
    deadline = time.monotonic() + timeout
    while True:
        try:
            shown = flattened(connection.client.get(capture).to_arm())
        except ApiError as exc:
            if exc.status != 404:
                raise
            shown = None
        if (deleted and shown is None) or (exists and shown is not None) or \
                (created and shown is not None and shown.get("provisioningState") == "Succeeded") or \
                (custom and shown is not None and jmespath.search(custom, shown)):
            return None
        if time.monotonic() >= deadline:
            raise CLIError(f"Wait operation timed-out after {timeout} seconds")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _progress(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} bytes")
    else:
        sys.stderr.write(f"\r{done} bytes")
    sys.stderr.flush()


def download_packet_capture(capture_name: str, location: str | None = None, resource_group_name: str | None = None,
                            watcher: str | None = None, file: str | None = None, subscription: str | None = None,
                            api: str | None = None, token: str | None = None) -> None:
    """A stored capture's file, with a progress bar; where it is kept, for one on the VM."""
    connection = Connection.open(subscription, api, token)
    capture = _capture(connection, capture_name, location, resource_group_name, watcher)
    where = connection.client.download_url(capture)
    if where.url is None:
        for place in where.instances or [where]:
            instance = f" instance {place.instance_id}" if place.instance_id else ""
            print(f"{capture.name}{instance}: {place.url or place.message} ({place.target})")
        return
    output = Path(file or f"{capture.name}.cap")
    partial = output.with_name(output.name + ".part")
    with httpx.stream("GET", where.url, timeout=60) as stream:
        if stream.status_code != 200:
            raise CliError(f"download failed: HTTP {stream.status_code}")
        total = int(stream.headers.get("content-length", 0)) or None
        done = 0
        with partial.open("wb") as handle:
            for chunk in stream.iter_bytes(1 << 20):
                handle.write(chunk)
                done += len(chunk)
                _progress(done, total)
    sys.stderr.write("\n")
    partial.replace(output)
    print(f"{capture.name}: {done} bytes written to {output}")


def list_agents(api: str | None = None, token: str | None = None) -> list[AgentView]:
    return Connection.open(api=api, token=token, needs_subscription=False).client.agents()


def list_watchers(subscription: str | None = None) -> list[NetworkWatcher]:
    connection = Connection.open(subscription)
    return connection.client.watchers(connection.subscription)


def show_watcher(resource_group_name: str, watcher_name: str, subscription: str | None = None) -> NetworkWatcher:
    connection = Connection.open(subscription)
    return connection.client.watcher(f"/subscriptions/{connection.subscription}/resourceGroups/"
                                      f"{resource_group_name}/providers/Microsoft.Network/networkWatchers/"
                                      f"{watcher_name}")


def show_vm_extension(resource_group_name: str, vm_name: str, extension_name: str,
                      subscription: str | None = None) -> dict:
    connection = Connection.open(subscription)
    vm = VirtualMachineId(connection.subscription, resource_group_name, vm_name) if not vm_name.startswith("/") \
        else VirtualMachineId.parse(vm_name, "--vm-name")
    if extension_name.lower() in (EXTENSION.lower(), "azurenetworkwatcherextension"):
        for agent in connection.client.agents():
            if agent.vm.lower() == vm.key:
                return vm_extension(agent)
    raise ApiError(404, "ResourceNotFound",
                   f"The Resource 'Microsoft.Compute/virtualMachines/{vm.name}/extensions/{extension_name}' "
                   f"under resource group '{vm.resource_group}' was not found: no PacketWatch agent reports for "
                   f"{vm.arm_id}")
