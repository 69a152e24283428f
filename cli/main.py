"""The `packetwatch` command."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from cli.look_back_options import add_look_back_options
from cli.capture_body import CliError
from shared.access import Role
from shared.config import Settings
from shared.errors import InvalidField, PacketWatchError
from shared.logs import configure_logging
from shared.resource_ids import VirtualMachineId

if TYPE_CHECKING:
    from cli.agent_enroll import BrokerAdmin


AGENT_METRICS_PORT, CONTROL_METRICS_PORT, NOTIFY_METRICS_PORT = 9810, 9811, 9812
# The packet-capture commands' one command table (cli/az, on knack): az's and the short forms.
CAPTURE_COMMANDS = (("network",), ("vm",), ("packet-capture",), ("agent", "show"), ("queue",))


SHUTDOWN_GRACE_SECONDS = 10


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from functions.api import create_app
    from shared.logs import uvicorn_log_config
    from shared.registry import Registry

    Registry.from_url(settings.database_url).engine.dispose()  # refuses a registry that is behind, before serving

    app = create_app(settings, queue_intake=settings.queue_intake)
    # What start-up built (modules, the app, its statements: ~130k objects) lives as long as the
    # process: after one collection of its garbage, it is left out of the collector's full
    # passes, each of which otherwise walks it all and holds every request (67 ms here).
    gc.collect()
    gc.freeze()
    # On SIGTERM: stop taking connections, let requests in flight finish for up to
    # SHUTDOWN_GRACE_SECONDS, then cancel the rest (a client's idle keep-alive connection
    # must not hold the process until its supervisor kills it).
    uvicorn.run(app, host=args.host, port=args.port,
                log_level=settings.log_level.lower(), ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                log_config=uvicorn_log_config(settings.log_format), timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    return 0


def _control(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from shared.storage_accounts import load_storage_accounts
    from workers.control.worker import run_control
    from workers.control.file_uploads import FileUploads

    uploads = FileUploads(load_storage_accounts(settings.storage_config),
                          timedelta(seconds=settings.upload_retry_seconds))
    run_control(settings.broker_url, settings.database_url, settings.heartbeat_seconds,
                settings.start_deadline_seconds, (settings.metrics_host, args.metrics_port), uploads)
    return 0


def _notify(args: argparse.Namespace, settings: Settings) -> int:
    from workers.notify.worker import load_notify_config, run_notifier

    run_notifier(settings.broker_url, load_notify_config(settings.notify_config),
                 (settings.metrics_host, args.metrics_port))
    return 0


def _notify_secret(args: argparse.Namespace, settings: Settings) -> int:
    from workers.notify.worker import new_secret

    print(new_secret())
    return 0


def _agent_run(args: argparse.Namespace, settings: Settings) -> int:
    from cli.look_back_options import look_back_filters, look_back_settings
    from workers.agent.config import AgentConfig
    from workers.agent.worker import Agent
    from workers.agent.imds import location_from_imds, vm_from_imds

    vm = VirtualMachineId.parse(args.vm, "--vm") if args.vm else vm_from_imds(settings.imds_url)
    location = args.location.lower() if args.location else None if args.vm else location_from_imds(settings.imds_url)
    capture_dir = Path(args.capture_dir or settings.capture_root)
    config = AgentConfig(
        vm=vm, interface=args.interface, netns=args.netns, capture_dir=capture_dir, broker_url=settings.broker_url,
        location=location,
        heartbeat_seconds=settings.heartbeat_seconds, probes=(settings.metrics_host, args.metrics_port),
        look_back=look_back_settings(args, capture_dir, vm), look_back_filters=look_back_filters(args),
    )
    Agent(config).run(concurrency=args.concurrency)
    return 0


def _agent_install(args: argparse.Namespace, settings: Settings) -> int:
    from cli.agent_install import AgentInstall
    from cli.look_back_options import look_back_environment
    from cli.agent_install import default_route_interface

    setup = AgentInstall(interface=args.interface or default_route_interface(), broker_url=args.broker_url or
                         settings.broker_url, vm=args.vm, capture_root=Path(args.capture_root or settings.capture_root),
                         config_dir=Path(args.config_dir), unit_dir=Path(args.unit_dir), user=args.user,
                         look_back=tuple(look_back_environment(args)))
    if args.print:
        print(f"# {setup.env_file}\n{setup.environment()}\n# {setup.unit_file}\n{setup.unit()}", end="")
        return 0
    for line in setup.install(enable=not args.no_enable):
        print(line)
    return 0


def _agent_uninstall(args: argparse.Namespace, settings: Settings) -> int:
    from cli.agent_install import AgentInstall

    setup = AgentInstall(interface="", broker_url="", capture_root=Path(settings.capture_root),
                         config_dir=Path(args.config_dir), unit_dir=Path(args.unit_dir), user=args.user)
    for line in setup.uninstall():
        print(line)
    return 0


def _broker_admin(args: argparse.Namespace, settings: Settings) -> "BrokerAdmin":
    from cli.agent_enroll import BrokerAdmin

    return BrokerAdmin(args.broker_url or settings.broker_url, args.management_url or settings.broker_management_url)


def _agent_enroll(args: argparse.Namespace, settings: Settings) -> int:
    vm = VirtualMachineId.parse(args.vm, "--vm")
    with _broker_admin(args, settings) as admin:
        enrolled = admin.enroll(vm)
    print(f"enrolled {vm.arm_id}: broker user {enrolled.user}, on its own queue only", file=sys.stderr)
    print(enrolled.broker_url)
    return 0


def _agent_revoke(args: argparse.Namespace, settings: Settings) -> int:
    vm = VirtualMachineId.parse(args.vm, "--vm")
    with _broker_admin(args, settings) as admin:
        existed = admin.revoke(vm)
    print(f"{vm.arm_id}: its agent's broker user " + ("deleted, its connections closed" if existed
                                                      else "did not exist"))
    return 0


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import create_engine

    from shared.registry_migrations import upgrade

    engine = create_engine(settings.database_url)
    before, after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    print(f"registry {where}: " + (f"schema revision {before} -> {after}" if before != after
                                   else f"already at schema revision {after}"))
    return 0


def _token_hash(args: argparse.Namespace, settings: Settings) -> int:
    from shared.access import hash_token

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    print(hash_token(token))
    return 0


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from shared.access import Role, create_token
    from shared.config import state_dir

    path = Path(args.config or settings.access_config or state_dir() / "access.yaml")
    token = create_token(path, args.name, Role(args.role), args.subscription)
    print(f"token {args.name!r} ({args.role}, subscriptions {', '.join(args.subscription)}) stored hashed in {path};"
          " it is shown only now:", file=sys.stderr)
    print(token)
    return 0


def _probe(args: argparse.Namespace, settings: Settings) -> int:
    """For health checks (compose, systemd): 0 once URL answers 200, 1 if it has not by --wait."""
    import time

    deadline = time.monotonic() + args.wait
    while True:
        try:
            answer = httpx.get(args.url, timeout=5)
            if answer.status_code == 200 or time.monotonic() >= deadline:
                print(answer.text.strip())
                return 0 if answer.status_code == 200 else 1
        except httpx.HTTPError as exc:
            if time.monotonic() >= deadline:
                print(f"packetwatch: {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
        time.sleep(0.5)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from cli.up import run_up
    from shared.config import state_dir

    return run_up(Path(args.state_dir) if args.state_dir else state_dir(), args.interface, args.port, args.host,
                  args.lab, args.location)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from lab.demo import run_demo
    except ImportError as exc:
        raise CliError("the demo runs on the lab (test VMs and their traffic), which comes with PacketWatch's "
                       "source checkout, not with the package: run `make demo` there") from exc
    return run_demo(seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="packetwatch", description="Alert-triggered packet capture for Linux VMs.",
        epilog="packet captures: packetwatch network watcher packet-capture --help (az's commands), packetwatch "
               "packet-capture --help (the short forms), packetwatch agent show --help, packetwatch vm extension "
               "show --help, packetwatch queue --help (captures over the broker)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (ARM packet-capture routes) with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--ssl-certfile", help="serve HTTPS with this certificate (PEM), as the Azure SDK expects")
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (PEM)")
    serve.set_defaults(handler=_serve)

    control = commands.add_parser("control", help="control-plane worker").add_subparsers(dest="action", required=True)
    control_run = control.add_parser("run", help="apply agents' status events to the registry")
    control_run.set_defaults(handler=_control)

    notify = commands.add_parser("notify", help="notification worker").add_subparsers(dest="action", required=True)
    notify_run = notify.add_parser("run", help="deliver completion events to webhooks")
    notify_run.set_defaults(handler=_notify)
    notify.add_parser("secret", help="print a new Standard Webhooks signing secret (whsec_…) for a webhook") \
        .set_defaults(handler=_notify_secret)

    agent = commands.add_parser("agent", help="the capture agent").add_subparsers(dest="action", required=True)
    run = agent.add_parser("run", help="run the agent for one VM")
    run.add_argument("--vm", help="the VM's ARM resource ID (default: asked of Azure's Instance Metadata Service)")
    run.add_argument("--interface", required=True, help="network interface to capture on")
    run.add_argument("--netns", help="network namespace of the interface (test VMs)")
    run.add_argument("-l", "--location", default=os.environ.get("PACKETWATCH_LOCATION"),
                     help="the VM's Azure region, e.g. westeurope (default: $PACKETWATCH_LOCATION, or asked of the "
                          "Instance Metadata Service with the VM's ID)")
    run.add_argument("--capture-dir", help="folder that holds the VM's capture root (default: the capture root)")
    run.add_argument("--concurrency", type=int, default=8)
    add_look_back_options(run)
    run.set_defaults(handler=_agent_run)
    for worker, port in ((run, AGENT_METRICS_PORT), (control_run, CONTROL_METRICS_PORT),
                         (notify_run, NOTIFY_METRICS_PORT)):
        worker.add_argument("--metrics-port", type=int, default=port,
                            help=f"serve /metrics, /healthz and /readyz on this port of PACKETWATCH_METRICS_HOST "
                                 f"(default {port}; 0: not at all)")

    probe = commands.add_parser("probe", help="health check: exit 0 once URL answers 200 (e.g. "
                                              f"http://127.0.0.1:{AGENT_METRICS_PORT}/readyz), 1 otherwise")
    probe.add_argument("url")
    probe.add_argument("--wait", type=float, default=0, help="keep asking for this many seconds (default: once)")
    probe.set_defaults(handler=_probe)
    install = agent.add_parser("install", help="install this VM's agent as a hardened systemd service (as root)")
    install.add_argument("--vm", help="the VM's resource ID (default: asked of the Instance Metadata Service at "
                                      "each start)")
    install.add_argument("--interface", help="interface to capture on (default: the default route's)")
    install.add_argument("--broker-url", help="the broker, e.g. amqps://user:pass@rabbit:5671// "
                                              "(default: PACKETWATCH_BROKER_URL)")
    install.add_argument("--capture-root", help="where captures are written (default: PACKETWATCH_CAPTURE_ROOT)")
    add_look_back_options(install)
    install.add_argument("--no-enable", action="store_true", help="write everything but do not start the service")
    install.add_argument("--print", action="store_true", help="print the environment file and unit; change nothing")
    removed = agent.add_parser("uninstall", help="stop and remove the agent's service, environment file and user "
                                                 "(captures stay)")
    for command in (install, removed):
        command.add_argument("--user", default="packetwatch", help="the service user (default: packetwatch)")
        command.add_argument("--config-dir", default="/etc/packetwatch", help="where agent.env goes")
        command.add_argument("--unit-dir", default="/etc/systemd/system", help="where the unit goes")
    install.set_defaults(handler=_agent_install)
    removed.set_defaults(handler=_agent_uninstall)
    enroll = agent.add_parser("enroll", help="give one VM's agent a broker user of its own (run by a broker "
                                             "administrator); prints the agent's broker URL, for `agent install`")
    revoke = agent.add_parser("revoke", help="delete one VM's agent broker user and close its connections")
    for command in (enroll, revoke):
        command.add_argument("--vm", required=True, help="the VM's (or scale set instance's) resource ID")
        command.add_argument("--broker-url", help="the broker as an administrator reaches it "
                                                  "(default: PACKETWATCH_BROKER_URL)")
        command.add_argument("--management-url", help="RabbitMQ's HTTP API, e.g. https://admin:pass@rabbit:15671 "
                                                      "(default: PACKETWATCH_BROKER_MANAGEMENT_URL, else the "
                                                      "broker's host on port 15672 as the broker URL's user)")
    enroll.set_defaults(handler=_agent_enroll)
    revoke.set_defaults(handler=_agent_revoke)

    db = commands.add_parser("db", help="the registry database").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="bring the registry's schema to this release's (PACKETWATCH_DATABASE_URL); "
                                  "captures are kept").set_defaults(handler=_db_upgrade)

    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    hashed = token.add_parser("hash", help="print the SHA-256 to put in PACKETWATCH_ACCESS_CONFIG")
    hashed.add_argument("token", help="the token (give '-' to read it from standard input)")
    hashed.set_defaults(handler=_token_hash)

    created = token.add_parser("create", help="make a token, store its hash and print the token once")
    created.add_argument("--name", required=True, help="a name for the token (who or what uses it)")
    created.add_argument("--role", choices=[role.value for role in Role], default=Role.READER.value)
    created.add_argument("--subscription", action="append", required=True,
                         help="a subscription ID the token may use ('*' for all); give it again for more")
    created.add_argument("--config", help="the access file (default: PACKETWATCH_ACCESS_CONFIG, else the state "
                                          "directory's access.yaml)")
    created.set_defaults(handler=_token_create)

    up = commands.add_parser("up", help="the whole stack on this machine, staying up until Ctrl-C")
    up.add_argument("--state-dir", help="where everything is kept (default: PACKETWATCH_STATE_DIR, else "
                                        "~/.local/state/packetwatch)")
    up.add_argument("--interface", help="the interface the local agent captures on (default: the default route's)")
    up.add_argument("--host", default="127.0.0.1", help="address the API and console listen on")
    up.add_argument("--port", type=int, default=8080, help="port of the API and console")
    up.add_argument("-l", "--location", default="local", type=str.lower,
                    help="the region its agents report (their network watcher is NetworkWatcher_<region>, in "
                         "NetworkWatcherRG; az's -l takes it); default: local")
    up.add_argument("--lab", type=int, default=0, metavar="N",
                    help="also N test VMs (network namespaces, 198.18.0.0/15) with an agent each and known traffic "
                         "every second, for a tour")
    up.set_defaults(handler=_up)

    demo = commands.add_parser("demo", help="a scripted tour: two test VMs, agents, a filtered capture, an alert")
    demo.add_argument("--seconds", type=int, default=6, help="how long the demo capture runs")
    demo.set_defaults(handler=_demo)
    return parser


def _download_file_flag(argv: list[str]) -> list[str]:
    """`packet-capture download -o FILE`, as the short form has always taken it: knack's -o is
    the output format, so the file goes in as --file."""
    if argv[:2] != ["packet-capture", "download"]:
        return argv
    return [("--file" if word in ("-o", "--output") else word) for word in argv]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(tuple(argv[:len(words)]) == words for words in CAPTURE_COMMANDS):
        from cli.az.loader import run_az

        return run_az(_download_file_flag(argv))
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        return args.handler(args, settings)
    except (InvalidField, CliError) as exc:
        print(f"packetwatch: {exc}", file=sys.stderr)
        return 2
    except PacketWatchError as exc:
        print(f"packetwatch: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"packetwatch: cannot reach the API: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
