"""Clients sign in with Entra ID (a local issuer speaking its protocol, lab/oidc_issuer.py): the
Azure SDK with azure-identity's ClientSecretCredential and credential_scopes for PacketWatch's
audience, the CLI with DefaultAzureCredential, against `packetwatch serve` over TLS, and the
console with the authorization code flow and PKCE, in Chromium."""

import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import uuid

import pytest

from tests.e2e.test_console import PLAYWRIGHT_CORE, SCREENSHOTS, drive
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import PacketCapture, PacketCaptureFilter, PacketCaptureStorageLocation

from lab.oidc_issuer import AUDIENCE, Client, oidc_issuer
from lab.stack import LAB_SUBSCRIPTION, free_port
from lab.tls import server_certificate
from shared.access import hash_token

TENANT = str(uuid.uuid4())
ROLE = "PacketCapture.Contributor"
CONSOLE_APP = str(uuid.uuid4())  # the console's app registration (a single-page app)


@pytest.fixture(scope="module")
def entra_api(lab, tmp_path_factory):
    folder = tmp_path_factory.mktemp("entra")
    with oidc_issuer(folder) as issuer:
        access = folder / "access.json"
        access.write_text(json.dumps({
            "tokens": [{"name": "lab", "sha256": hash_token(lab.stack.token), "subscriptions": ["*"],
                        "role": "contributor"}],
            "entra": {"audiences": [AUDIENCE], "tenants": [TENANT], "authority": issuer.url,
                      "clientId": CONSOLE_APP},
            "roleAssignments": [{"appRole": ROLE, "role": "contributor", "scope": f"/subscriptions/{LAB_SUBSCRIPTION}"}]}))
        cert, key, ca = server_certificate(folder, "api")
        url = lab.stack.start_server("api-entra", free_port(), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                                     verify=ssl.create_default_context(cafile=str(ca)),
                                     env={"PACKETWATCH_ACCESS_CONFIG": str(access), "SSL_CERT_FILE": str(issuer.ca)})
        plain = lab.stack.start_server("api-entra-http", free_port(),
                                       env={"PACKETWATCH_ACCESS_CONFIG": str(access), "SSL_CERT_FILE": str(issuer.ca)})
        try:
            yield issuer, url, ca, plain
        finally:
            lab.stack.stop("api-entra")
            lab.stack.stop("api-entra-http")


def _principal(issuer, roles: list[str]) -> Client:
    client = Client(str(uuid.uuid4()), secrets.token_urlsafe(24), str(uuid.uuid4()), roles)
    issuer.clients[client.client_id] = client
    return client


def _sdk(issuer, url: str, ca, principal: Client) -> NetworkManagementClient:
    credential = ClientSecretCredential(TENANT, principal.client_id, principal.secret, authority=issuer.url,
                                        disable_instance_discovery=True, connection_verify=str(issuer.ca))
    return NetworkManagementClient(credential, LAB_SUBSCRIPTION, base_url=url, connection_verify=str(ca),
                                   credential_scopes=[f"{AUDIENCE}/.default"], polling_interval=0.2)


def test_the_azure_sdk_signs_in_with_a_service_principal_and_its_app_role(lab, entra_api, monkeypatch):
    issuer, url, ca, _ = entra_api
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(issuer.ca))  # msal reaches the issuer with requests
    vm = lab.vm1
    name = f"entra-{secrets.token_hex(3)}"
    parameters = PacketCapture(target=vm.vm.arm_id, time_limit_in_seconds=60,
                               storage_location=PacketCaptureStorageLocation(file_path=f"/var/captures/e2e/{name}.cap"),
                               filters=[PacketCaptureFilter(protocol="UDP", local_port="7901")])
    with _sdk(issuer, url, ca, _principal(issuer, [ROLE])) as sdk:
        created = sdk.packet_captures.begin_create(vm.vm.resource_group, "entra-watcher", name, parameters).result()
        assert created.name == name
        assert sdk.packet_captures.get(vm.vm.resource_group, "entra-watcher", name).target == vm.vm.arm_id
        sdk.packet_captures.begin_delete(vm.vm.resource_group, "entra-watcher", name).result()
    with _sdk(issuer, url, ca, _principal(issuer, [])) as sdk:
        with pytest.raises(HttpResponseError) as refused:
            sdk.packet_captures.get(vm.vm.resource_group, "entra-watcher", name)
        assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"


def test_the_cli_signs_in_with_azure_identity_without_a_static_token(lab, entra_api):
    issuer, url, ca, _ = entra_api
    principal = _principal(issuer, [ROLE])
    env = {key: value for key, value in os.environ.items() if key != "PACKETWATCH_TOKEN"}
    env.update({"PACKETWATCH_API_URL": url, "PACKETWATCH_API_AUDIENCE": AUDIENCE, "AZURE_TENANT_ID": TENANT,
                "AZURE_CLIENT_ID": principal.client_id, "AZURE_CLIENT_SECRET": principal.secret,
                "AZURE_AUTHORITY_HOST": issuer.url, "REQUESTS_CA_BUNDLE": str(issuer.ca),
                "SSL_CERT_FILE": str(ca)})
    command = [sys.executable, "-m", "cli.main", "network", "watcher", "packet-capture", "list",
               "--subscription", LAB_SUBSCRIPTION, "-g", lab.vm1.vm.resource_group, "--watcher", "entra-watcher",
               "-o", "json"]
    listed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    env["AZURE_CLIENT_SECRET"] = "not-the-secret"
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "could not sign in with Entra ID" in refused.stderr


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
def test_the_console_signs_in_with_the_authorization_code_flow_and_pkce(lab, entra_api):
    issuer, _, _, plain = entra_api
    console = plain + "/"
    issuer.spas[CONSOLE_APP] = console
    issuer.user = Client("", "", str(uuid.uuid4()), [ROLE])
    env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "SCREENSHOTS": str(SCREENSHOTS),
           "CONSOLE_URL": console, "SUBSCRIPTION": LAB_SUBSCRIPTION}
    said = []
    drive("console_signin.cjs", env, said.append)
    assert said == ["SIGNED IN with a JWT\n"]
    assert not issuer.codes, "the code was redeemed, once"
