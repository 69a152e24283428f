"""The agent's look-back options (`agent run`, `agent install`): flags whose defaults come
from PACKETWATCH_LOOK_BACK_* (what `agent install` writes to agent.env), checked here so a
bad value stops the agent at start naming the flag, not when its ring opens."""

from __future__ import annotations

from collections.abc import Callable
import argparse
import os
from pathlib import Path

from pydantic import ValidationError

from cli.capture_body import CliError, read_filters
from shared.arm import MAX_LOOK_BACK_SECONDS, PacketCaptureFilter
from shared.bpf import MAX_SNAPLEN
from shared.broker import agent_queue_name
from shared.filters import parse_filters
from shared.resource_ids import VirtualMachineId
from workers.agent.config import STATE_FOLDER
from workers.capture.look_back import LookBackSettings

DEFAULT_SPOOL_BYTES = 256 * 1024 * 1024
# flag -> environment variable
ENVIRONMENT = {"look_back_seconds": "PACKETWATCH_LOOK_BACK_SECONDS", "look_back_bytes": "PACKETWATCH_LOOK_BACK_BYTES",
               "look_back_snaplen": "PACKETWATCH_LOOK_BACK_SNAPLEN", "look_back_filters": "PACKETWATCH_LOOK_BACK_FILTERS",
               "look_back_dir": "PACKETWATCH_LOOK_BACK_DIR"}


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be {low}..{high}, not {value}")
        return value
    return parse


def add_look_back_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("look-back", "a standing ring of recent packets, so that a capture with "
                                      "lookBackSeconds also holds packets from before it was asked for (defaults: "
                                      "the PACKETWATCH_LOOK_BACK_* variables)")
    env = {key: os.environ.get(name) for key, name in ENVIRONMENT.items()}
    group.add_argument("--look-back-seconds", type=_bounded("--look-back-seconds", 0, MAX_LOOK_BACK_SECONDS),
                       default=env["look_back_seconds"] or 0, metavar="S",
                       help=f"keep the last S seconds (1-{MAX_LOOK_BACK_SECONDS}; default 0: no ring)")
    group.add_argument("--look-back-bytes", type=_bounded("--look-back-bytes", 4096, 2**40),
                       default=env["look_back_bytes"] or DEFAULT_SPOOL_BYTES, metavar="B",
                       help=f"at most B bytes of spool (default {DEFAULT_SPOOL_BYTES})")
    group.add_argument("--look-back-snaplen", type=_bounded("--look-back-snaplen", 0, MAX_SNAPLEN),
                       default=env["look_back_snaplen"] or 0, metavar="N",
                       help="keep the first N bytes of each packet (default 0: whole packets)")
    group.add_argument("--look-back-filters", metavar="JSON", default=env["look_back_filters"],
                       help="ARM filters (JSON list or @file) for what the ring keeps (default: everything)")
    group.add_argument("--look-back-dir", metavar="DIR", default=env["look_back_dir"],
                       help="the spool (default: under the capture dir's .agent folder; a tmpfs such as "
                            "/dev/shm/packetwatch keeps it in memory)")


def look_back_filters(args: argparse.Namespace) -> tuple[PacketCaptureFilter, ...]:
    try:
        filters = tuple(PacketCaptureFilter.model_validate(item)
                        for item in read_filters(args.look_back_filters, "--look-back-filters"))
    except ValidationError as exc:
        raise CliError(f"--look-back-filters: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
    parse_filters(list(filters), "--look-back-filters")
    return filters


def look_back_settings(args: argparse.Namespace, capture_dir: Path, vm: VirtualMachineId) -> LookBackSettings | None:
    if not args.look_back_seconds:
        return None
    folder = Path(args.look_back_dir) if args.look_back_dir else \
        capture_dir / STATE_FOLDER / agent_queue_name(vm) / "look-back"
    return LookBackSettings(seconds=args.look_back_seconds, spool_bytes=args.look_back_bytes,
                            snaplen=args.look_back_snaplen, folder=folder)


def look_back_environment(args: argparse.Namespace) -> list[str]:
    """agent.env lines for the look-back options given (checked first)."""
    look_back_filters(args)
    if args.look_back_seconds:
        LookBackSettings(args.look_back_seconds, args.look_back_bytes, args.look_back_snaplen, Path("/"))
    return [f"{ENVIRONMENT[key]}={value}" for key, value in vars(args).items()
            if key in ENVIRONMENT and value not in (None, 0, DEFAULT_SPOOL_BYTES, "")]
