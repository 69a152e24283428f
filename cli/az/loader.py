"""PacketWatch's one command table for its packet captures, on knack (the framework az is
built on): commands and their arguments declared once, with az's names, short flags and
defaults, in two forms (forms.py) over the same operations (commands.py):

    packetwatch network watcher packet-capture create|show|show-status|list|stop|delete|wait
    packetwatch network watcher list|show, packetwatch vm extension show       (az's)
    packetwatch packet-capture create|show|show-status|list|stop|delete|wait|download
    packetwatch agent show                                                    (the short forms)
    packetwatch queue submit|events                 (captures over the broker: shared/submissions.py)

A short form is the az command with the watcher named by -g and --watcher (default
PacketWatch) instead of found by region, and with --api and --token. knack adds az's global
behaviour (-o json|jsonc|table|tsv|yaml|yamlc|none, --query, --debug, --verbose,
--only-show-errors, help)."""

from __future__ import annotations

import os
import sys
from typing import Any

from knack import CLI
from knack.arguments import ArgumentsContext
from knack.commands import CLICommand, CLICommandsLoader, CommandGroup
from knack.help import CLIHelp
from knack.log import get_logger

from cli.az.forms import Form, failure, presented, table_of
from cli.az.help import register as register_help
from shared.arm import DEFAULT_TOTAL_BYTES_PER_SESSION, MAX_LOOK_BACK_SECONDS, MAX_TIME_LIMIT_SECONDS
from shared.lifecycle_events import KINDS

logger = get_logger(__name__)
OPERATIONS = "cli.az.commands#{}"
QUEUE_OPERATIONS = "cli.az.queue_commands#{}"
DEFAULT_WATCHER = "PacketWatch"
CAPTURE_VERBS = (("create", "create_packet_capture", "capture"), ("show", "show_packet_capture", "capture"),
                 ("show-status", "show_packet_capture_status", "status"), ("list", "list_packet_captures", "capture"),
                 ("stop", "stop_packet_capture", None), ("delete", "delete_packet_capture", None),
                 ("wait", "wait_packet_capture", None))
AZ_CAPTURES, SHORT_CAPTURES = "network watcher packet-capture", "packet-capture"


class PresentedCommand(CLICommand):
    """A command whose operation's models are printed as its form prints them."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return presented(super().__call__(*args, **kwargs), self.cli_ctx.form)


class Loader(CLICommandsLoader):
    def __init__(self, cli_ctx: CLI | None = None) -> None:
        super().__init__(cli_ctx=cli_ctx, command_cls=PresentedCommand)

    def load_command_table(self, args: list[str] | None) -> dict[str, Any]:
        with CommandGroup(self, "network watcher", OPERATIONS) as group:
            group.command("list", "list_watchers")
            group.command("show", "show_watcher")
        with CommandGroup(self, AZ_CAPTURES, OPERATIONS) as group:
            for name, handler, _ in CAPTURE_VERBS:
                group.command(name, handler)
        with CommandGroup(self, "vm extension", OPERATIONS) as group:
            group.command("show", "show_vm_extension")
        with CommandGroup(self, SHORT_CAPTURES, OPERATIONS) as group:
            for name, handler, kind in CAPTURE_VERBS:
                group.command(name, handler, table_transformer=table_of(kind) if kind else None)
            group.command("download", "download_packet_capture")
        with CommandGroup(self, "agent", OPERATIONS) as group:
            group.command("show", "list_agents", table_transformer=table_of("agent"))
        with CommandGroup(self, "queue", QUEUE_OPERATIONS) as group:
            group.command("submit", "submit_packet_capture")
            group.command("events", "show_events")
        return super().load_command_table(args)

    def load_arguments(self, command: str) -> None:
        with ArgumentsContext(self, "") as args:
            args.argument("subscription", options_list=["--subscription"],
                          help="subscription ID (default: $PACKETWATCH_SUBSCRIPTION)")
            args.argument("resource_group_name", options_list=["--resource-group", "-g"], help="resource group")
            args.argument("location", options_list=["--location", "-l"],
                          help="the region, whose network watcher holds the capture")
            args.argument("watcher", options_list=["--watcher"],
                          help="PacketWatch: the network watcher by name, in -g (instead of the region's)")
            args.argument("api", options_list=["--api"], help="PacketWatch API base URL (default: $PACKETWATCH_API_URL)")
            args.argument("token", options_list=["--token"], help="API bearer token (default: $PACKETWATCH_TOKEN)")
            args.argument("capture_name", options_list=["--name", "-n"], help="packet capture name")
        for group in ("network", "vm"):
            with ArgumentsContext(self, group) as args:
                for name in ("api", "token"):  # az's own connection: the environment
                    args.ignore(name)
        with ArgumentsContext(self, SHORT_CAPTURES) as args:
            args.ignore("location")
            args.argument("resource_group_name", options_list=["--resource-group", "-g"], required=True,
                          help="resource group of the network watcher (and of a VM given by name)")
            args.argument("watcher", options_list=["--watcher"], default=DEFAULT_WATCHER,
                          help="network watcher name")
        with ArgumentsContext(self, SHORT_CAPTURES + " download") as args:
            args.argument("file", options_list=["--file"], help="file to write (default: NAME.cap); -o FILE too")
        with ArgumentsContext(self, "network watcher show") as args:
            args.argument("watcher_name", options_list=["--name", "-n"], help="network watcher name")
        with ArgumentsContext(self, AZ_CAPTURES + " create") as args:
            args.argument("location", options_list=["--location", "-l"],
                          help="the region (default: the VM's, as its agent reports it)")
        for captures in (AZ_CAPTURES, SHORT_CAPTURES):
            self._create_arguments(captures + " create")
        self._create_arguments("queue submit")
        with ArgumentsContext(self, "queue") as args:
            args.argument("broker_url", options_list=["--broker-url"],
                          help="the broker, e.g. amqps://user:pass@rabbit:5671/ (default: $PACKETWATCH_BROKER_URL)")
            args.argument("timeout", type=float, help="seconds to wait (queue submit: for the answer, default 30; "
                                                      "queue events: 0 waits until interrupted)")
        with ArgumentsContext(self, "queue submit") as args:
            args.argument("message_id", options_list=["--message-id"],
                          help="the message's ID (default: a new one); the capture's name keeps a resend one capture")
        with ArgumentsContext(self, "queue events") as args:
            args.argument("event_type", options_list=["--type"], choices=list(KINDS),
                          help="only events of this type")
            args.argument("vm", help="only events of this target (a resource ID)")
            args.argument("count", type=int, help="stop after this many events (default: never)")
        for captures in (AZ_CAPTURES, SHORT_CAPTURES):
            self._status_and_wait_arguments(captures)
        with ArgumentsContext(self, "vm extension show") as args:
            args.argument("vm_name", options_list=["--vm-name"], help="name (in -g) or ID of the VM")
            args.argument("extension_name", options_list=["--name", "-n"],
                          help="the extension: NetworkWatcherAgentLinux")
        super().load_arguments(command)

    def _create_arguments(self, command: str) -> None:
        with ArgumentsContext(self, command) as args:
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

    def _status_and_wait_arguments(self, captures: str) -> None:
        with ArgumentsContext(self, captures + " show-status") as args:
            args.argument("watch", action="store_true", help="follow the capture with a live line until it ends")
            args.argument("interval", type=float, help="seconds between updates with --watch (default 1)")
        with ArgumentsContext(self, captures + " wait") as args:
            args.argument("created", action="store_true", help="wait until created with provisioningState Succeeded")
            args.argument("exists", action="store_true", help="wait until the capture exists")
            args.argument("deleted", action="store_true", help="wait until deleted")
            args.argument("custom", help="wait until the JMESPath query holds on the capture, e.g. \"target!=null\"")
            args.argument("interval", type=int, help="polling interval in seconds (default 30)")
            args.argument("timeout", type=int, help="maximum wait in seconds (default 3600)")


class PacketWatchCli(CLI):
    """One invocation, in the form its command is in (forms.py): how it prints and fails."""

    def __init__(self, form: Form, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.form = form

    def exception_handler(self, ex: Exception) -> int:
        failed = failure(ex, self.form)
        if failed is None:
            return super().exception_handler(ex)
        line, code = failed
        if self.form is Form.SHORT:
            print(line, file=sys.stderr)
        else:
            logger.error(line)
        return code


def run_az(argv: list[str]) -> int:
    register_help()
    cli = PacketWatchCli(Form.of(argv), cli_name="packetwatch",
                         config_dir=os.path.expanduser(os.path.join("~", ".packetwatch")),
                         config_env_var_prefix="PACKETWATCH", commands_loader_cls=Loader, help_cls=CLIHelp,
                         out_file=sys.stdout)
    return cli.invoke(argv)
