"""`packetwatch packet-capture …` and `packetwatch agent show`: the az network watcher
packet-capture commands, with az's flags and defaults, over PacketWatch's API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from cli.arm_client import ApiError, ArmClient, checked
from cli.capture_body import CaptureFlags, CliError
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_TIME_LIMIT_SECONDS
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId

DEFAULT_WATCHER = "PacketWatch"
TABLE_COLUMNS = {
    "capture": [("Name", "name"), ("Target", "properties.target"), ("ProvisioningState", "properties.provisioningState"),
                ("TimeLimit", "properties.timeLimitInSeconds"), ("FilePath", "properties.storageLocation.filePath"),
                ("StoragePath", "properties.storageLocation.storagePath")],
    "status": [("Name", "name"), ("Status", "packetCaptureStatus"), ("StartTime", "captureStartTime"),
               ("StopReason", "stopReason"), ("Errors", "packetCaptureError"), ("Packets", "packetWatchSummary.packets")],
    "agent": [("VM", "vm"), ("Status", "status"), ("Version", "version"), ("Host", "hostname"),
              ("Interface", "interface"), ("LastSeen", "lastSeen"), ("Running", "runningCaptures")],
}


def _connection(parser: argparse.ArgumentParser, formats: bool = True) -> None:
    parser.add_argument("--api", default=os.environ.get("PACKETWATCH_API_URL", "http://127.0.0.1:8080"),
                        help="PacketWatch API base URL (default: $PACKETWATCH_API_URL)")
    parser.add_argument("--token", default=os.environ.get("PACKETWATCH_TOKEN"),
                        help="API bearer token (default: $PACKETWATCH_TOKEN)")
    if formats:
        parser.add_argument("-o", "--output", dest="output_format", choices=["json", "table"], default="json")


def _scope(parser: argparse.ArgumentParser, named: bool = True, formats: bool = True) -> None:
    if named:
        parser.add_argument("-n", "--name", required=True, help="packet capture name")
    parser.add_argument("-g", "--resource-group", required=True, help="resource group of the network watcher")
    parser.add_argument("--subscription", default=os.environ.get("PACKETWATCH_SUBSCRIPTION"),
                        help="subscription ID (default: $PACKETWATCH_SUBSCRIPTION)")
    parser.add_argument("--watcher", default=DEFAULT_WATCHER, help=f"network watcher name (default: {DEFAULT_WATCHER})")
    _connection(parser, formats)


def _client(args: argparse.Namespace) -> ArmClient:
    if not args.token:
        raise CliError("--token is required (or set PACKETWATCH_TOKEN)")
    return ArmClient(args.api, args.token)


def _capture(args: argparse.Namespace) -> CaptureId:
    if not args.subscription:
        raise CliError("--subscription is required (or set PACKETWATCH_SUBSCRIPTION)")
    return CaptureId(args.subscription, args.resource_group, args.watcher, getattr(args, "name", None) or "x")


def _checked(answer: httpx.Response) -> Any:
    try:
        return checked(answer) or {}
    except ApiError as exc:
        raise CliError(str(exc)) from None


def _field(item: dict, path: str) -> str:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _print(args: argparse.Namespace, result: Any, kind: str) -> None:
    if args.output_format == "json":
        print(json.dumps(result, indent=2))
        return
    rows = result if isinstance(result, list) else [result]
    columns = TABLE_COLUMNS[kind]
    cells = [[title for title, _ in columns]] + [[_field(row, path) for _, path in columns] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    cells.insert(1, ["-" * width for width in widths])
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _target_id(args: argparse.Namespace) -> str:
    """--target (or --vm): a name in -g, or a resource ID; a scale set with --target-type AzureVMSS."""
    flag, value = ("--target", args.target) if args.target else ("--vm", args.vm)
    if not value:
        raise CliError("give --vm (or --target): the VM, or with --target-type AzureVMSS the scale set")
    kind = ScaleSetId if args.target_type == "AzureVMSS" else VirtualMachineId
    if value.startswith("/"):
        return kind.parse(value, flag).arm_id
    return kind(args.subscription, args.resource_group, value).arm_id


def create(args: argparse.Namespace) -> int:
    capture = _capture(args)
    if not (args.storage_account or args.storage_path or args.file_path or args.local_path):
        raise CliError("give --storage-account, --file-path (or --local-path with --continuous-capture)")
    flags = CaptureFlags(
        target=_target_id(args), target_type=args.target_type, storage_account=args.storage_account,
        storage_path=args.storage_path, file_path=args.file_path, local_path=args.local_path,
        capture_size=args.capture_size, capture_limit=args.capture_limit, time_limit=args.time_limit,
        filters=args.filters, include=args.include, exclude=args.exclude, continuous_capture=args.continuous_capture,
        capture_settings=args.capture_settings, look_back_seconds=args.look_back_seconds)
    _print(args, _checked(_client(args).create(capture, flags.properties())), "capture")
    return 0


def show(args: argparse.Namespace) -> int:
    _print(args, _checked(_client(args).get(_capture(args))), "capture")
    return 0


def show_status(args: argparse.Namespace) -> int:
    _print(args, _checked(_client(args).query_status(_capture(args))), "status")
    return 0


def list_captures(args: argparse.Namespace) -> int:
    _print(args, _checked(_client(args).list(_capture(args)))["value"], "capture")
    return 0


def stop(args: argparse.Namespace) -> int:
    _checked(_client(args).stop(_capture(args)))
    return 0


def delete(args: argparse.Namespace) -> int:
    _checked(_client(args).delete(_capture(args)))
    return 0


def _progress(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} bytes")
    else:
        sys.stderr.write(f"\r{done} bytes")
    sys.stderr.flush()


def download(args: argparse.Namespace) -> int:
    capture = _capture(args)
    where = _checked(_client(args).download_url(capture))
    if "url" not in where:
        print(f"{capture.name}: {where['message']} ({where['target']})")
        return 0
    output = Path(args.file or f"{capture.name}.cap")
    partial = output.with_name(output.name + ".part")
    with httpx.stream("GET", where["url"], timeout=60) as stream:
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
    return 0


def agent_show(args: argparse.Namespace) -> int:
    _print(args, _checked(_client(args).agents())["value"], "agent")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("packet-capture", help="manage packet captures (as az network watcher packet-capture)")
    actions = group.add_subparsers(dest="action", required=True)

    made = actions.add_parser("create", help="create and start a packet capture on a VM")
    _scope(made)
    made.add_argument("--vm", help="the VM: a name in -g, or a resource ID")
    made.add_argument("--target", help="the VM or (with --target-type AzureVMSS) scale set: a name in -g, or an ID")
    made.add_argument("--target-type", choices=["AzureVM", "AzureVMSS"], help="what --target (or --vm) names "
                      "(default AzureVM)")
    made.add_argument("--include", nargs="+", metavar="INSTANCE", help="with AzureVMSS: only these instances "
                      "(IDs such as 0 1, or names such as vmss_0)")
    made.add_argument("--exclude", nargs="+", metavar="INSTANCE", help="with AzureVMSS: all instances but these")
    made.add_argument("--storage-account", help="storage account resource ID to upload to")
    made.add_argument("--storage-path", help="URI of the container to store the capture in "
                                             "(default: network-watcher-logs)")
    made.add_argument("--file-path", help="path of the capture file on the VM (under /var/captures, *.cap)")
    made.add_argument("--capture-size", type=int, default=0, help="bytes captured per packet (0: whole packet)")
    made.add_argument("--capture-limit", type=int, default=DEFAULT_TOTAL_BYTES_PER_SESSION,
                      help="maximum size of the capture output in bytes")
    made.add_argument("--time-limit", type=int, default=MAX_TIME_LIMIT_SECONDS, help="seconds the capture runs")
    made.add_argument("--filters", help="JSON list of filters, or @file holding it")
    made.add_argument("--continuous-capture", choices=["true", "false"],
                      help="a ring of files: true rolls (oldest file removed first), false stops when they are full")
    made.add_argument("--capture-settings", nargs="+", metavar="KEY=VALUE",
                      help="with --continuous-capture: file-count=10 file-size-in-bytes=104857600 "
                           "session-time-limit-in-seconds=86400")
    made.add_argument("--look-back-seconds", type=int, metavar="S",
                      help="PacketWatch: begin with the S seconds of matching packets before the capture was asked "
                           "for, from the agent's look-back ring (agent run --look-back-seconds)")
    made.add_argument("--local-path", help="with --continuous-capture: where the ring's files go on the VM "
                                           "(under /var/captures, *.cap; each file gets a _00001 suffix)")
    made.set_defaults(handler=lambda args, settings: create(args))

    for name, handler, helptext in (("show", show, "show a packet capture"),
                                    ("show-status", show_status, "show the status of a packet capture"),
                                    ("stop", stop, "stop a running packet capture"),
                                    ("delete", delete, "delete a packet capture (its files are kept)")):
        action = actions.add_parser(name, help=helptext)
        _scope(action)
        action.set_defaults(handler=lambda args, settings, handler=handler: handler(args))

    listed = actions.add_parser("list", help="list the packet captures of a network watcher")
    _scope(listed, named=False)
    listed.set_defaults(handler=lambda args, settings: list_captures(args))

    get = actions.add_parser("download", help="download a capture's file (or say where it is kept)")
    _scope(get, formats=False)
    get.add_argument("-o", "--output", dest="file", help="file to write (default: NAME.cap)")
    get.set_defaults(handler=lambda args, settings: download(args))


def register_agent_show(agent_actions: argparse._SubParsersAction) -> None:
    shown = agent_actions.add_parser("show", help="list the agents that report in (VM, version, last seen)")
    _connection(shown)
    shown.set_defaults(handler=lambda args, settings: agent_show(args))
