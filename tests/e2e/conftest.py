from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.network import NetworkManagementClient

from cli.arm_client import ArmRoutes
from cli.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from lab.stack import STORAGE_ID, Stack, free_port
from lab.vms import LabVm, create_vms, remove_vms
from tests.e2e.notify_sink import NotifySink
from tests.entra_server import IdentityEndpoint, identity_endpoint
from lab.tls import server_certificate


@dataclass
class Lab:
    stack: Stack
    client: ArmRoutes
    vm1: LabVm
    vm2: LabVm
    azurite: Azurite
    sink: NotifySink
    entra: EntraStorage


@dataclass
class EntraStorage:
    """A second account, HTTPS and Entra ID only (Azurite `--oauth basic`), reached with the
    API's managed identity (a local identity endpoint); `ca` signs its certificate."""
    azurite: Azurite
    identity: IdentityEndpoint
    ca: Path
    storage_id: str = STORAGE_ID.replace(ACCOUNT, "keyless")


def _entra_storage(workdir: Path, identity: IdentityEndpoint) -> EntraStorage:
    cert, key, ca = server_certificate(workdir, "storage")
    azurite = Azurite(workdir / "entra", tls=(cert, key), trust=ca)
    azurite.start()
    return EntraStorage(azurite, identity, ca)


FUNCTION_KEY = "e2e-function-key"
LOOK_BACK_RULE = "E2eLookBack"
LOOK_BACK_PORT = 7310
LOOK_BACK_TEMPLATE = {"lookBackSeconds": 30, "timeLimitInSeconds": 60,
                      "filters": [{"protocol": "UDP", "localPort": str(LOOK_BACK_PORT)}]}
WRONG_KEY = base64.b64encode(b"not the account key of the emulator, 64 bytes long...........!").decode()
NOTIFY_SECRET = "whsec_" + base64.b64encode(b"e2e-notify-secret-0123456789-abcdef").decode()
UNREACHABLE_STORAGE_ID = STORAGE_ID.replace(ACCOUNT, "nowhere")
WRONG_KEY_STORAGE_ID = STORAGE_ID.replace(ACCOUNT, "wrongkey")


@pytest.fixture(scope="session")
def lab(broker_url, tmp_path_factory) -> Iterator[Lab]:
    """Two netns VMs with an agent each, the control worker and the API, as real processes."""
    workdir = tmp_path_factory.mktemp("stack")
    alert_config = workdir / "alerts.json"
    alert_config.write_text(json.dumps({"functionKeys": [FUNCTION_KEY],
                                        "defaultTemplate": {"timeLimitInSeconds": 120},
                                        "rules": [{"name": "look-back", "alertRule": LOOK_BACK_RULE,
                                                   "template": LOOK_BACK_TEMPLATE}]}))
    azurite = Azurite(workdir)
    azurite.start()
    identity = ExitStack()
    entra = _entra_storage(workdir, identity.enter_context(identity_endpoint()))
    sink = NotifySink()
    hook = sink.start()
    storage_config = workdir / "storage.json"
    storage_config.write_text(json.dumps({"accounts": {
        ACCOUNT: {"connectionString": azurite.connection_string},
        "nowhere": {"connectionString": azurite.connection_string.replace(str(azurite.port), "1"),
                    "retrySeconds": 5},
        "wrongkey": {"connectionString": azurite.connection_string.replace(ACCOUNT_KEY, WRONG_KEY),
                     "retrySeconds": 600},
        "keyless": {"accountUrl": entra.azurite.account_url, "credential": "DefaultAzureCredential"},
    }}))
    notify_config = workdir / "notify.json"
    notify_config.write_text(json.dumps({"webhooks": [{"url": hook, "secret": NOTIFY_SECRET}],
                                         "firstDelaySeconds": 0.2, "maxDelaySeconds": 1}))
    vms = create_vms(2)
    stack = Stack(broker_url, f"sqlite:///{workdir}/registry.db", workdir,
                  extra_env={"PACKETWATCH_ALERT_CONFIG": str(alert_config),
                             "PACKETWATCH_STORAGE_CONFIG": str(storage_config),
                             "PACKETWATCH_NOTIFY_CONFIG": str(notify_config),
                             "PACKETWATCH_UPLOAD_RETRY_SECONDS": "120", "REQUESTS_CA_BUNDLE": str(entra.ca)},
                  control_env=entra.identity.environment)
    try:
        stack.start_api()
        for vm in vms:
            stack.start_agent(vm)
        yield Lab(stack, ArmRoutes(stack.api_url, stack.token), *vms, azurite, sink, entra)
    finally:
        stack.stop_all()
        remove_vms(vms)
        azurite.stop()
        entra.azurite.stop()
        identity.close()
        sink.stop()


def tshark_records(path: Path) -> list[tuple]:
    """(protocol, src, dst, sport, dport, frame length, captured length) per packet, read by tshark."""
    fields = ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "frame.len",
              "frame.cap_len"]
    command = [shutil.which("tshark") or "tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=,"]
    for field in fields:
        command += ["-e", field]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    records = []
    for line in output.splitlines():
        src, dst, tsport, tdport, usport, udport, length, caplen = line.split(",")
        protocol = "TCP" if tsport else "UDP" if usport else "other"
        records.append((protocol, src, dst, int(tsport or usport or 0), int(tdport or udport or 0), int(length),
                        int(caplen)))
    return records


class StaticToken:
    """A TokenCredential that hands the SDK a PacketWatch API token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def sdk(lab, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key, ca = server_certificate(folder, "server")
    url = lab.stack.start_server("api-tls", free_port(), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                                 verify=ssl.create_default_context(cafile=str(ca)))
    with NetworkManagementClient(StaticToken(lab.stack.token), lab.vm1.vm.subscription, base_url=url,
                                 connection_verify=str(ca), polling_interval=0.2) as client:
        yield client  # closed after: its kept-alive connection would hold the server's graceful stop
    lab.stack.stop("api-tls")
