"""`packetwatch packet-capture …`: the az network watcher packet-capture commands, over our API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from shared.resource_ids import CaptureId

API_VERSION = "2026-01-01"
DEFAULT_WATCHER = "PacketWatch"


class CliError(RuntimeError):
    """One line for the user; the command exits non-zero."""


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--name", required=True, help="packet capture name")
    parser.add_argument("-g", "--resource-group", required=True, help="resource group of the network watcher")
    parser.add_argument("--subscription", default=os.environ.get("PACKETWATCH_SUBSCRIPTION"),
                        help="subscription ID (default: $PACKETWATCH_SUBSCRIPTION)")
    parser.add_argument("--watcher", default=DEFAULT_WATCHER, help="network watcher name")
    parser.add_argument("--api", default=os.environ.get("PACKETWATCH_API_URL", "http://127.0.0.1:8080"),
                        help="PacketWatch API base URL (default: $PACKETWATCH_API_URL)")
    parser.add_argument("--token", default=os.environ.get("PACKETWATCH_TOKEN"),
                        help="API bearer token (default: $PACKETWATCH_TOKEN)")


def _capture(args: argparse.Namespace) -> CaptureId:
    if not args.subscription:
        raise CliError("--subscription is required (or set PACKETWATCH_SUBSCRIPTION)")
    return CaptureId(args.subscription, args.resource_group, args.watcher, args.name)


def _error(answer: httpx.Response) -> CliError:
    try:
        error = answer.json()["error"]
        return CliError(f"{error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        return CliError(f"HTTP {answer.status_code}: {answer.text[:200]}")


def _progress(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} bytes")
    else:
        sys.stderr.write(f"\r{done} bytes")
    sys.stderr.flush()


def download(args: argparse.Namespace) -> int:
    capture = _capture(args)
    if not args.token:
        raise CliError("--token is required (or set PACKETWATCH_TOKEN)")
    answer = httpx.get(f"{args.api}{capture.arm_id}/downloadUrl", params={"api-version": API_VERSION},
                       headers={"Authorization": f"Bearer {args.token}"}, timeout=30)
    if answer.status_code != 200:
        raise _error(answer)
    where = answer.json()
    if "url" not in where:
        print(f"{capture.name}: {where['message']} ({where['target']})")
        return 0
    output = Path(args.output or f"{capture.name}.cap")
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


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("packet-capture", help="manage packet captures (as az network watcher packet-capture)")
    actions = group.add_subparsers(dest="action", required=True)
    get = actions.add_parser("download", help="download a capture's file (or say where it is kept)")
    add_common(get)
    get.add_argument("-o", "--output", help="file to write (default: NAME.cap)")
    get.set_defaults(handler=lambda args, settings: download(args))
