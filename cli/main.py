"""The `packetwatch` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import httpx

from cli import packet_capture
from cli.packet_capture import CliError
from shared.config import Settings
from shared.errors import InvalidField
from shared.logs import RedactSecrets
from shared.resource_ids import VirtualMachineId


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from shared.logs import uvicorn_log_config

    uvicorn.run("functions.api:create_app", factory=True, host=args.host, port=args.port, log_level="info",
                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, log_config=uvicorn_log_config())
    return 0


def _control(args: argparse.Namespace, settings: Settings) -> int:
    from workers.control import run_control

    run_control(settings.broker_url, settings.database_url, settings.heartbeat_seconds,
                settings.start_deadline_seconds)
    return 0


def _notify(args: argparse.Namespace, settings: Settings) -> int:
    from workers.notifier import load_notify_config, run_notifier

    run_notifier(settings.broker_url, load_notify_config(settings.notify_config))
    return 0


def _notify_secret(args: argparse.Namespace, settings: Settings) -> int:
    from workers.notifier import new_secret

    print(new_secret())
    return 0


def _agent_run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.storage_accounts import load_storage_accounts
    from workers.agent import Agent, AgentConfig

    config = AgentConfig(
        vm=VirtualMachineId.parse(args.vm, "--vm"), interface=args.interface, netns=args.netns,
        capture_dir=Path(args.capture_dir or settings.capture_root), broker_url=settings.broker_url,
        heartbeat_seconds=settings.heartbeat_seconds, storage=load_storage_accounts(settings.storage_config),
        upload_retry_seconds=settings.upload_retry_seconds,
    )
    Agent(config).run(concurrency=args.concurrency)
    return 0


def _token_hash(args: argparse.Namespace, settings: Settings) -> int:
    from shared.access import hash_token

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    print(hash_token(token))
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from lab.demo import run_demo

    return run_demo(seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="packetwatch", description="Alert-triggered packet capture for Linux VMs.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (ARM packet-capture routes) with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--ssl-certfile", help="serve HTTPS with this certificate (PEM), as the Azure SDK expects")
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (PEM)")
    serve.set_defaults(handler=_serve)

    control = commands.add_parser("control", help="control-plane worker").add_subparsers(dest="action", required=True)
    control.add_parser("run", help="apply agents' status events to the registry").set_defaults(handler=_control)

    notify = commands.add_parser("notify", help="notification worker").add_subparsers(dest="action", required=True)
    notify.add_parser("run", help="deliver completion events to webhooks").set_defaults(handler=_notify)
    notify.add_parser("secret", help="print a new Standard Webhooks signing secret (whsec_…) for a webhook") \
        .set_defaults(handler=_notify_secret)

    agent = commands.add_parser("agent", help="the capture agent").add_subparsers(dest="action", required=True)
    run = agent.add_parser("run", help="run the agent for one VM")
    run.add_argument("--vm", required=True, help="the VM's ARM resource ID")
    run.add_argument("--interface", required=True, help="network interface to capture on")
    run.add_argument("--netns", help="network namespace of the interface (test VMs)")
    run.add_argument("--capture-dir", help="folder that holds the VM's capture root (default: the capture root)")
    run.add_argument("--concurrency", type=int, default=8)
    run.set_defaults(handler=_agent_run)
    packet_capture.register_agent_show(agent)

    packet_capture.register(commands)

    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    hashed = token.add_parser("hash", help="print the SHA-256 to put in PACKETWATCH_ACCESS_CONFIG")
    hashed.add_argument("token", help="the token (give '-' to read it from standard input)")
    hashed.set_defaults(handler=_token_hash)

    up = commands.add_parser("up", help="everything on this machine: two test VMs, agents, API, a capture")
    up.add_argument("--seconds", type=int, default=6, help="how long the demo capture runs")
    up.set_defaults(handler=_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, Settings())
    except (InvalidField, CliError) as exc:
        print(f"packetwatch: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"packetwatch: cannot reach the API: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
