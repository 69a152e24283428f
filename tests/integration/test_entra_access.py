"""People and apps sign in with Entra ID: tokens from a local OpenID Connect issuer
(tests/oidc_issuer.py) are validated as Entra's must be, and their roles are assignments at
ARM scopes, inherited downwards. Every malformed or misdirected token is a 401; a role that
does not reach is a 403 in ARM's words."""

import json
import secrets
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import ValidationError

from functions.api import create_app
from shared.access import AccessConfig, hash_token
from shared.config import Settings
from shared.resource_ids import CaptureId, VirtualMachineId
from tests.integration.conftest import capture_body
from lab.oidc_issuer import AUDIENCE, oidc_issuer

API = "?api-version=2026-01-01"
TENANT, PARTNER, STRANGER = (str(uuid.uuid4()) for _ in range(3))
APP_ID = str(uuid.uuid4())
READER, OPERATOR, GROUP = (str(uuid.uuid4()) for _ in range(3))
SUB = "00000000-0000-0000-0000-0000000000e1"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    with oidc_issuer(tmp_path_factory.mktemp("oidc")) as issuer:
        yield issuer


@pytest.fixture
def api(issuer, broker_url, tmp_path, monkeypatch):
    """The API with Entra ID configured: a reader at resource group rg-a, a group with
    contributor at one watcher of rg-b, the app role PacketCapture.Contributor over the subscription."""
    monkeypatch.setenv("SSL_CERT_FILE", str(issuer.ca))
    access = tmp_path / "access.json"
    access.write_text(json.dumps({
        "tokens": [{"name": "automation", "sha256": hash_token("automation-secret"), "role": "reader",
                    "subscriptions": [SUB]}],
        "entra": {"audiences": [AUDIENCE, APP_ID], "tenants": [TENANT, PARTNER], "authority": issuer.url},
        "roleAssignments": [
            {"principalId": READER, "role": "reader", "scope": f"/subscriptions/{SUB}/resourceGroups/rg-a"},
            {"principalId": GROUP, "role": "contributor",
             "scope": f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.Network/networkWatchers/nw-b"},
            {"appRole": "PacketCapture.Contributor", "role": "contributor", "scope": f"/subscriptions/{SUB}"}]}))
    app = create_app(Settings(broker_url=broker_url, database_url=f"sqlite:///{tmp_path}/registry.db",
                              access_config=str(access)), queue_intake=False)
    with TestClient(app) as client:
        yield client


def _capture(group: str, watcher: str) -> tuple[CaptureId, VirtualMachineId]:
    vm = VirtualMachineId(SUB, group, f"vm-{secrets.token_hex(3)}")
    return CaptureId(SUB, group, watcher, f"pc-{secrets.token_hex(3)}"), vm


def _put(api, token: str, group: str = "rg-a", watcher: str = "nw-a"):
    capture, vm = _capture(group, watcher)
    return api.put(capture.arm_id + API, json=capture_body(vm), headers={"Authorization": f"Bearer {token}"})


def _answer(api, token: str, group: str = "rg-a") -> tuple[int, str]:
    capture, _ = _capture(group, "nw-a")
    answer = api.get(capture.arm_id + API, headers={"Authorization": f"Bearer {token}"})
    code = answer.json()["error"]["code"] if answer.status_code >= 400 else ""
    return answer.status_code, code


def test_a_valid_token_of_each_kind_is_taken(api, issuer):
    for claims in (issuer.claims(TENANT, READER), issuer.claims(PARTNER, READER, audience=APP_ID),
                   {**issuer.claims(TENANT, READER), "iss": f"https://sts.windows.net/{TENANT}/", "ver": "1.0"}):
        assert _answer(api, issuer.sign(claims)) == (404, "NotFound"), claims  # allowed to look; nothing there


def test_every_token_it_must_not_trust_is_refused_with_401(api, issuer):
    good = issuer.claims(TENANT, READER)
    public_pem = issuer.keys[-1][1].public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    unpublished = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = jwt.get_unverified_header(issuer.sign(good))
    without_oid = {key: value for key, value in good.items() if key != "oid"}
    tokens = {
        "wrong audience": issuer.sign({**good, "aud": "api://someone-else"}),
        "ARM's audience": issuer.sign({**good, "aud": "https://management.azure.com/"}),
        "another tenant": issuer.sign(issuer.claims(STRANGER, READER)),
        "tenant claim and issuer disagree": issuer.sign({**good, "tid": PARTNER}),
        "expired": issuer.sign({**good, "exp": int(time.time()) - 600}),
        "not yet valid": issuer.sign({**good, "nbf": int(time.time()) + 600}),
        "alg none": jwt.encode(good, None, algorithm="none", headers={"kid": header["kid"]}),
        "HS256 with the public key": _hs256(good, public_pem, header["kid"]),
        "an unknown kid": issuer.sign(good, kid="never-published", key=unpublished),
        "a known kid, another key": issuer.sign(good, key=unpublished),
        "no oid": issuer.sign(without_oid),
        "no exp": issuer.sign({key: value for key, value in good.items() if key != "exp"}),
        "not a JWT": "a.b.c",
        "a static token never issued": "pwt_not-a-token",
    }
    for what, token in tokens.items():
        assert _answer(api, token) == (401, "InvalidAuthenticationToken"), what
    answer = api.get("/subscriptions" + API, headers={"Authorization": f"Bearer {tokens['expired']}"})
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """A token signed with HMAC-SHA256 keyed by the issuer's public key (the classic confusion)."""
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + part(
        json.dumps(claims).encode())
    return signing + "." + part(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def test_roles_reach_their_scope_and_below_and_nothing_else(api, issuer):
    reader = issuer.sign(issuer.claims(TENANT, READER))
    assert _put(api, reader).status_code == 403, "a reader may not write"
    refused = _put(api, reader)
    assert refused.json()["error"]["code"] == "AuthorizationFailed"
    assert "Microsoft.Network/networkWatchers/packetCaptures/write" in refused.json()["error"]["message"]
    assert _answer(api, reader, group="rg-b") == (403, "AuthorizationFailed"), "rg-a's role does not reach rg-b"

    member = issuer.sign(issuer.claims(TENANT, str(uuid.uuid4()), groups=[GROUP]))
    assert _put(api, member, group="rg-b", watcher="nw-b").status_code == 201, "its group's role at the watcher"
    assert _put(api, member, group="rg-b", watcher="nw-other").status_code == 403, "not another watcher"
    assert _put(api, member, group="rg-a").status_code == 403

    app = issuer.sign(issuer.claims(TENANT, str(uuid.uuid4()), roles=["PacketCapture.Contributor"]))
    assert _put(api, app, group="rg-c", watcher="nw-c").status_code == 201, "an app role over the subscription"
    nobody = issuer.sign(issuer.claims(TENANT, str(uuid.uuid4())))
    assert _answer(api, nobody) == (403, "AuthorizationFailed"), "a valid token with no role"


def test_lists_show_only_what_the_roles_reach(api, issuer):
    app = issuer.sign(issuer.claims(TENANT, str(uuid.uuid4()), roles=["PacketCapture.Contributor"]))
    for group, watcher in (("rg-a", "nw-a"), ("rg-b", "nw-b"), ("rg-b", "nw-other")):
        assert _put(api, app, group=group, watcher=watcher).status_code == 201
    reader = issuer.sign(issuer.claims(TENANT, READER))
    listed = api.get(f"/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers" + API,
                     headers={"Authorization": f"Bearer {reader}"})
    assert listed.status_code == 200
    assert {w["name"] for w in listed.json()["value"]} == {"nw-a"}
    subscriptions = api.get("/subscriptions" + API, headers={"Authorization": f"Bearer {reader}"}).json()
    assert [s["subscriptionId"] for s in subscriptions["value"]] == [SUB]


def test_a_new_signing_key_is_taken_with_one_fetch_and_none_in_the_steady_state(api, issuer):
    token = issuer.sign(issuer.claims(TENANT, READER))
    assert _answer(api, token)[0] == 404
    fetched = issuer.jwks_requests
    for _ in range(20):
        assert _answer(api, token)[0] == 404
    assert issuer.jwks_requests == fetched, "no request waits on the keys in the steady state"
    time.sleep(10.5)  # past the shortest interval between fetches (a flood of unknown kids fetches once)
    issuer.rotate()
    rotated = issuer.sign(issuer.claims(TENANT, READER))
    assert _answer(api, rotated)[0] == 404, "the new key is taken without a restart"
    assert _answer(api, rotated)[0] == 404
    assert issuer.jwks_requests == fetched + 1, "one fetch for the new key"


def test_the_static_tokens_stay_for_automation(api):
    assert _answer(api, "automation-secret") == (404, "NotFound")
    assert _put(api, "automation-secret").status_code == 403


def test_an_access_file_naming_arms_audience_is_refused():
    with pytest.raises(ValidationError) as refused:
        AccessConfig.model_validate({"entra": {"audiences": ["https://management.azure.com/"], "tenants": [TENANT]}})
    assert "Resource Manager" in str(refused.value)
