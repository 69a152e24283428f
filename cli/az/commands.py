"""The az-shaped commands (`packetwatch network watcher …`, `packetwatch vm extension show`):
each takes az's parameters, finds the watcher as az does (by region), and returns the
object az would print; knack prints it (-o, --query)."""

from __future__ import annotations

import sys
import time
from typing import Any

from knack.util import CLIError

from cli.az.connection import Connection, ResourceNotFoundError
from cli.az.shapes import EXTENSION, flattened, vm_extension
from cli.capture_body import CaptureFlags, CliError
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_TIME_LIMIT_SECONDS
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId

ACTIVE = ("NotStarted", "Running")


def _watcher(connection: Connection, location: str) -> tuple[str, str]:
    """(resource group, name) of the region's network watcher, found as az finds it."""
    for watcher in connection.answer(connection.client.watchers, connection.subscription)["value"]:
        if watcher["location"].lower() == location.lower().replace(" ", ""):
            return watcher["id"].split("/")[4], watcher["name"]
    raise CLIError(f"network watcher is not enabled for region '{location}'.")


def _capture(connection: Connection, location: str, name: str) -> CaptureId:
    return CaptureId(connection.subscription, *_watcher(connection, location), name)


def _id_of(kind: type[VirtualMachineId] | type[ScaleSetId], value: str, subscription: str, group: str,
           flag: str) -> str:
    return kind.parse(value, flag).arm_id if value.startswith("/") else kind(subscription, group, value).arm_id


def _location_of(connection: Connection, target: str) -> str:
    """The region of a VM (or scale set) from its agent(s), as az reads the VM's location."""
    key = target.lower()
    for agent in connection.answer(connection.client.agents)["value"]:
        if agent.get("location") and (agent["vm"].lower() == key or agent["vm"].lower().startswith(key + "/")):
            return agent["location"]
    raise CLIError(f"cannot tell the region of {target}: no agent of it reports one; give --location")


def create_packet_capture(resource_group_name: str, capture_name: str, vm: str | None = None,
                          target: str | None = None, target_type: str | None = None, location: str | None = None,
                          storage_account: str | None = None, storage_path: str | None = None,
                          file_path: str | None = None, capture_size: int = 0,
                          capture_limit: int = DEFAULT_TOTAL_BYTES_PER_SESSION,
                          time_limit: int = MAX_TIME_LIMIT_SECONDS, filters: str | None = None,
                          include: list[str] | None = None, exclude: list[str] | None = None,
                          continuous_capture: str | None = None, capture_settings: list[str] | None = None,
                          local_path: str | None = None, look_back_seconds: int | None = None,
                          subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    sub = connection.subscription
    named = target or vm
    if not named:
        raise CLIError("usage error: --vm NAME_OR_ID | --target NAME_OR_ID")
    kind = ScaleSetId if target_type == "AzureVMSS" else VirtualMachineId
    target_id = _id_of(kind, named, sub, resource_group_name, "--target" if target else "--vm")
    flags = CaptureFlags(
        target=target_id, target_type=target_type,
        storage_account=_id_of_account(storage_account, sub, resource_group_name) if storage_account else None,
        storage_path=storage_path, file_path=file_path, local_path=local_path, capture_size=capture_size,
        capture_limit=capture_limit, time_limit=time_limit, filters=filters, include=include, exclude=exclude,
        continuous_capture=continuous_capture, capture_settings=capture_settings,
        look_back_seconds=look_back_seconds)
    try:
        properties = flags.properties()
    except CliError as exc:
        raise CLIError(str(exc)) from None
    capture = CaptureId(sub, *_watcher(connection, location or _location_of(connection, target_id)), capture_name)
    return flattened(connection.answer(connection.client.create, capture, properties))


def _id_of_account(value: str, subscription: str, group: str) -> str:
    """--storage-account: an ID, or a name in the command's resource group (as az resolves it)."""
    if value.startswith("/"):
        return value
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{value}"


def show_packet_capture(location: str, capture_name: str, subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    return flattened(connection.answer(connection.client.get, _capture(connection, location, capture_name)))


def list_packet_captures(location: str, subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    listed = connection.answer(connection.client.list, _capture(connection, location, "x"))
    return [flattened(item) for item in listed["value"]]


def stop_packet_capture(location: str, capture_name: str, subscription: str | None = None) -> None:
    connection = Connection.from_environment(subscription)
    connection.answer(connection.client.stop, _capture(connection, location, capture_name))


def delete_packet_capture(location: str, capture_name: str, subscription: str | None = None) -> None:
    connection = Connection.from_environment(subscription)
    connection.answer(connection.client.delete, _capture(connection, location, capture_name))


def _live_line(status: dict, properties: dict, began: float) -> str:
    summary = status.get("packetWatchSummary") or {}
    limit = properties.get("timeLimitInSeconds") or MAX_TIME_LIMIT_SECONDS
    return (f"{status.get('packetCaptureStatus')}: {summary.get('packets', 0)} packets, "
            f"{summary.get('bytes', 0)} bytes, {time.monotonic() - began:.0f} s elapsed, time limit {limit} s")


def show_packet_capture_status(location: str, capture_name: str, watch: bool = False, interval: float = 1.0,
                               subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    capture = _capture(connection, location, capture_name)
    status = connection.answer(connection.client.query_status, capture)
    if not watch:
        return status
    properties = connection.answer(connection.client.get, capture)["properties"]
    began = time.monotonic()
    while status.get("packetCaptureStatus") in ACTIVE:
        print(f"\r{_live_line(status, properties, began)}", end="", file=sys.stderr, flush=True)
        time.sleep(interval)
        status = connection.answer(connection.client.query_status, capture)
    print(f"\r{_live_line(status, properties, began)}", file=sys.stderr, flush=True)
    return status


def wait_packet_capture(location: str, capture_name: str, created: bool = False, exists: bool = False,
                        deleted: bool = False, custom: str | None = None, interval: int = 30, timeout: int = 3600,
                        subscription: str | None = None) -> None:
    """az's generic wait: poll the capture (as `show` prints it) until the condition holds."""
    import jmespath

    if sum(bool(c) for c in (created, exists, deleted, custom)) != 1:
        raise CLIError("usage error: give one of --created, --exists, --deleted, --custom")
    connection = Connection.from_environment(subscription)
    capture = _capture(connection, location, capture_name)
    deadline = time.monotonic() + timeout
    while True:
        try:
            shown = flattened(connection.answer(connection.client.get, capture))
        except ResourceNotFoundError:
            shown = None
        if (deleted and shown is None) or (exists and shown is not None) or \
                (created and shown is not None and shown.get("provisioningState") == "Succeeded") or \
                (custom and shown is not None and jmespath.search(custom, shown)):
            return None
        if time.monotonic() >= deadline:
            raise CLIError(f"Wait operation timed-out after {timeout} seconds")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def list_watchers(subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    return [flattened(w) for w in connection.answer(connection.client.watchers, connection.subscription)["value"]]


def show_watcher(resource_group_name: str, watcher_name: str, subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    path = (f"/subscriptions/{connection.subscription}/resourceGroups/{resource_group_name}/providers/"
            f"Microsoft.Network/networkWatchers/{watcher_name}")
    return flattened(connection.answer(connection.client.resource, path))


def show_vm_extension(resource_group_name: str, vm_name: str, extension_name: str,
                      subscription: str | None = None) -> Any:
    connection = Connection.from_environment(subscription)
    vm = VirtualMachineId(connection.subscription, resource_group_name, vm_name) if not vm_name.startswith("/") \
        else VirtualMachineId.parse(vm_name, "--vm-name")
    if extension_name.lower() in (EXTENSION.lower(), "azurenetworkwatcherextension"):
        for agent in connection.answer(connection.client.agents)["value"]:
            if agent["vm"].lower() == vm.key:
                return vm_extension(agent)
    raise ResourceNotFoundError(
        f"(ResourceNotFound) The Resource 'Microsoft.Compute/virtualMachines/{vm.name}/extensions/{extension_name}' "
        f"under resource group '{vm.resource_group}' was not found: no PacketWatch agent reports for {vm.arm_id}")
