"""The az command tree PacketWatch serves, on knack (the framework az is built on): commands
and their arguments declared once, with az's names, short flags and defaults; knack adds
az's global behaviour (-o json|jsonc|table|tsv|yaml|yamlc|none, --query, --debug,
--verbose, --only-show-errors, help)."""

from __future__ import annotations

from typing import Any
import os

import httpx
from knack import CLI
from knack.arguments import ArgumentsContext
from knack.commands import CLICommandsLoader, CommandGroup
from knack.help import CLIHelp
from knack.log import get_logger
from knack.util import CLIError

from cli.az.help import register as register_help
from cli.az.connection import ResourceNotFoundError
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_LOOK_BACK_SECONDS, MAX_TIME_LIMIT_SECONDS

logger = get_logger(__name__)
OPERATIONS = "cli.az.commands#{}"
TREE = ("network", "vm")


class Loader(CLICommandsLoader):
    def load_command_table(self, args: list[str] | None) -> dict[str, Any]:
        with CommandGroup(self, "network watcher", OPERATIONS) as group:
            group.command("list", "list_watchers")
            group.command("show", "show_watcher")
        with CommandGroup(self, "network watcher packet-capture", OPERATIONS) as group:
            for name, handler in (("create", "create_packet_capture"), ("show", "show_packet_capture"),
                                  ("show-status", "show_packet_capture_status"), ("list", "list_packet_captures"),
                                  ("stop", "stop_packet_capture"), ("delete", "delete_packet_capture"),
                                  ("wait", "wait_packet_capture")):
                group.command(name, handler)
        with CommandGroup(self, "vm extension", OPERATIONS) as group:
            group.command("show", "show_vm_extension")
        return super().load_command_table(args)

    def load_arguments(self, command: str) -> None:
        with ArgumentsContext(self, "") as args:
            args.argument("subscription", options_list=["--subscription"],
                          help="subscription ID (default: $PACKETWATCH_SUBSCRIPTION)")
            args.argument("resource_group_name", options_list=["--resource-group", "-g"], help="resource group")
            args.argument("location", options_list=["--location", "-l"],
                          help="the region, whose network watcher holds the capture")
        with ArgumentsContext(self, "network watcher show") as args:
            args.argument("watcher_name", options_list=["--name", "-n"], help="network watcher name")
        with ArgumentsContext(self, "network watcher packet-capture") as args:
            args.argument("capture_name", options_list=["--name", "-n"], help="packet capture name")
        with ArgumentsContext(self, "network watcher packet-capture create") as args:
            args.argument("location", options_list=["--location", "-l"],
                          help="the region (default: the VM's, as its agent reports it)")
            args.argument("vm", help="name or ID of the VM to target (a name is looked up in -g)")
            args.argument("target", help="name or ID of the target VM or scale set")
            args.argument("target_type", choices=["AzureVM", "AzureVMSS"], help="what --target (or --vm) names")
            args.argument("storage_account", help="name (in -g) or ID of a configured storage account")
            args.argument("storage_path", help="URI of an existing container to store the capture in")
            args.argument("file_path", help="local path on the VM (under /var/captures, *.cap)")
            args.argument("capture_size", type=int, help="bytes captured per packet (0: all)")
            args.argument("capture_limit", type=int,
                          help=f"maximum bytes of the capture (default {DEFAULT_TOTAL_BYTES_PER_SESSION})")
            args.argument("time_limit", type=int, help=f"seconds the capture runs (default {MAX_TIME_LIMIT_SECONDS})")
            args.argument("filters", help="JSON list of filters, or @file holding it")
            args.argument("include", nargs="+", help="with AzureVMSS: instances to capture on (e.g. 0 1)")
            args.argument("exclude", nargs="+", help="with AzureVMSS: instances to leave out")
            args.argument("continuous_capture", choices=["true", "false"],
                          help="a ring of files: true rolls, false stops when they are full")
            args.argument("capture_settings", nargs="+",
                          help="file-count=10 file-size-in-bytes=104857600 session-time-limit-in-seconds=86400")
            args.argument("local_path", help="with --continuous-capture: where the ring's files go on the VM")
            args.argument("look_back_seconds", type=int,
                          help=f"PacketWatch: begin with up to {MAX_LOOK_BACK_SECONDS} s of packets from before")
        with ArgumentsContext(self, "network watcher packet-capture show-status") as args:
            args.argument("watch", action="store_true", help="follow the capture with a live line until it ends")
            args.argument("interval", type=float, help="seconds between updates with --watch (default 1)")
        with ArgumentsContext(self, "network watcher packet-capture wait") as args:
            args.argument("created", action="store_true", help="wait until created with provisioningState Succeeded")
            args.argument("exists", action="store_true", help="wait until the capture exists")
            args.argument("deleted", action="store_true", help="wait until deleted")
            args.argument("custom", help="wait until the JMESPath query holds on the capture, e.g. \"target!=null\"")
            args.argument("interval", type=int, help="polling interval in seconds (default 30)")
            args.argument("timeout", type=int, help="maximum wait in seconds (default 3600)")
        with ArgumentsContext(self, "vm extension show") as args:
            args.argument("vm_name", options_list=["--vm-name"], help="name (in -g) or ID of the VM")
            args.argument("extension_name", options_list=["--name", "-n"],
                          help="the extension: NetworkWatcherAgentLinux")
        super().load_arguments(command)


class PacketWatchCli(CLI):
    """az's exit codes: 0 ok, 1 error, 2 usage, 3 not found."""

    def exception_handler(self, ex: Exception) -> int:
        if isinstance(ex, ResourceNotFoundError):
            logger.error(ex)
            return 3
        if isinstance(ex, (CLIError, httpx.HTTPError)):
            logger.error(ex)
            return 1
        return super().exception_handler(ex)


def run_az(argv: list[str]) -> int:
    register_help()
    cli = PacketWatchCli(cli_name="packetwatch", config_dir=os.path.expanduser(os.path.join("~", ".packetwatch")),
                         config_env_var_prefix="PACKETWATCH", commands_loader_cls=Loader, help_cls=CLIHelp)
    return cli.invoke(argv)
