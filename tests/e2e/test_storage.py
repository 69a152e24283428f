"""Completion pipeline on real parts: upload to Azurite at Network Watcher's path, verified;
notifications; download; and the faults that must lose nothing."""

import base64
import hashlib
import json
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from lab.stack import STORAGE_ID
from lab.traffic import inbound, send
from shared.registry import Registry
from shared.resource_ids import CaptureId
from shared.storage_layout import BLOB_CONTAINER, UPLOADS_PREFIX, blob_path, staging_name
from tests.e2e.conftest import NOTIFY_SECRET, UNREACHABLE_STORAGE_ID, WRONG_KEY_STORAGE_ID, tshark_records


def _capture(lab, name: str) -> CaptureId:
    return CaptureId(lab.vm1.vm.subscription, lab.vm1.vm.resource_group, "e2e-watcher",
                     f"{name}-{secrets.token_hex(3)}")


def _run(lab, name: str, port: int, packets: int, payload: int = 20, **location) -> tuple[CaptureId, dict]:
    capture = _capture(lab, name)
    body = {"target": lab.vm1.vm.arm_id, "timeLimitInSeconds": 120, "storageLocation": location,
            "filters": [{"protocol": "UDP", "localPort": str(port)}]}
    made = lab.client.create(capture, body)
    assert made.status_code == 201
    if location.get("storageId"):  # as Azure does: where the file will be, known from create
        planned = made.json()["properties"]["storageLocation"]["storagePath"]
        assert planned.endswith(f"/{BLOB_CONTAINER}/{blob_path(lab.vm1.vm, _created(lab, capture))}")
        assert lab.client.status(capture)["packetWatchStored"] is False or lab.client.get(capture).json()[
            "properties"]["storageLocation"]["storagePath"] == planned
    lab.client.wait_for(capture, "Running")
    send(lab.vm1, [inbound(lab.vm1, "UDP", port + 1, port, payload=payload)], repeat=packets)
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped", "Error", timeout=30)
    return capture, lab.client.wait_read(capture)


def _blob_service(lab) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(lab.azurite.connection_string)


def _blob_name(storage_path: str) -> str:
    return storage_path.split(f"/{BLOB_CONTAINER}/", 1)[1]


def _blob_sha256(lab, storage_path: str) -> str:
    data = _blob_service(lab).get_blob_client(BLOB_CONTAINER, _blob_name(storage_path)).download_blob().readall()
    return hashlib.sha256(data).hexdigest()


def _created(lab, capture: CaptureId) -> datetime:
    """When the capture was created (the blob is named after it, as Network Watcher does)."""
    return Registry.from_url(lab.stack.database_url).get(capture).created_at


def test_a_capture_with_a_storage_account_is_uploaded_verified_and_its_spool_removed(lab, tmp_path):
    capture, status = _run(lab, "upload", 7300, 10, storageId=STORAGE_ID)
    storage_path = lab.client.wait_stored(capture)
    assert lab.client.status(capture)["packetWatchStored"] is True
    summary = status["packetWatchSummary"]
    expected = blob_path(lab.vm1.vm, _created(lab, capture))
    assert storage_path == f"http://127.0.0.1:{lab.azurite.port}/devstoreaccount1/{BLOB_CONTAINER}/{expected}"
    assert expected == expected.lower() and re.search(r"/\d{4}/\d{2}/\d{2}/packetcapture_\d\d_\d\d_\d\d_\d{3}\.cap$",
                                                      expected)
    assert _blob_sha256(lab, storage_path) == summary["sha256"]
    stored = _blob_service(lab).get_blob_client(BLOB_CONTAINER, _blob_name(storage_path)).get_blob_properties()
    assert stored.metadata["sha256"] == summary["sha256"], "the SHA-256 of the bytes sent is the blob's metadata"
    assert not Path(summary["filePaths"][0]).exists(), "the spooled copy is removed once the blob is verified"

    assert summary["protocols"] == {"UDP": 10}
    [talker] = summary["topTalkers"]
    assert (talker["source"], talker["destination"], talker["packets"]) == (str(lab.vm1.peer),
                                                                            str(lab.vm1.address), 10)
    assert summary["durationSeconds"] > 0

    where = lab.client.download_url(capture).json()
    assert "sig=" in where["url"] and where["blob"] == storage_path
    assert hashlib.sha256(httpx.get(where["url"]).content).hexdigest() == summary["sha256"]
    output = tmp_path / "cli.cap"
    cli = subprocess.run([sys.executable, "-m", "cli.main", "packet-capture", "download", "-n", capture.name,
                          "-g", capture.resource_group, "--subscription", capture.subscription,
                          "--watcher", capture.network_watcher, "--api", lab.stack.api_url, "-o", str(output),
                          "--token", lab.stack.token],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert hashlib.sha256(output.read_bytes()).hexdigest() == summary["sha256"]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not [d for d in lab.sink.for_subject(capture.arm_id) if d.answered == 200]:
        time.sleep(0.1)
    [delivery] = lab.sink.for_subject(capture.arm_id)
    event = delivery.event
    assert (event["specversion"], event["type"], event["source"]) == ("1.0", "com.packetwatch.capture.completed",
                                                                     "/packetwatch")
    assert event["data"]["storagePath"] == storage_path and event["data"]["packetCaptureStatus"] == "Stopped"
    verified = Webhook(NOTIFY_SECRET).verify(delivery.body, delivery.headers)  # Standard Webhooks, as a receiver
    assert verified == event and delivery.headers["webhook-id"] == event["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(NOTIFY_SECRET).verify(delivery.body.replace(b"Stopped", b"Running"), delivery.headers)
    stale = {**delivery.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(NOTIFY_SECRET).verify(delivery.body, stale)

    assert lab.client.delete(capture).status_code == 202
    assert _blob_service(lab).get_blob_client(BLOB_CONTAINER, _blob_name(storage_path)).exists()


def test_a_file_path_with_a_storage_account_stays_on_the_vm_after_upload(lab):
    capture, status = _run(lab, "both", 7310, 5, storageId=STORAGE_ID,
                           filePath=f"/var/captures/e2e/both-{secrets.token_hex(3)}.cap")
    storage_path = lab.client.wait_stored(capture)
    local = Path(status["packetWatchSummary"]["filePaths"][0])
    assert local.exists()
    assert _blob_sha256(lab, storage_path) == hashlib.sha256(local.read_bytes()).hexdigest()
    assert lab.client.delete(capture).status_code == 202
    assert local.exists()


def test_when_storage_never_answers_the_capture_ends_in_storage_failed_and_keeps_its_file(lab):
    capture, status = _run(lab, "nostore", 7320, 5, storageId=UNREACHABLE_STORAGE_ID)
    failed = lab.client.wait_for(capture, "Error", timeout=90)
    assert failed["packetCaptureError"] == ["StorageFailed"]
    local = status["packetWatchSummary"]["filePaths"][0]
    assert local in failed["packetWatchErrorMessage"] and Path(local).exists()
    where = lab.client.download_url(capture).json()
    assert where["filePath"] == local
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not lab.sink.for_subject(capture.arm_id):
        time.sleep(0.1)
    assert [d.event["type"] for d in lab.sink.for_subject(capture.arm_id)] == ["com.packetwatch.capture.failed"]


def test_a_storage_error_no_retry_can_mend_ends_the_upload_at_once_with_the_service_error(lab):
    capture, status = _run(lab, "wrongkey", 7325, 3, storageId=WRONG_KEY_STORAGE_ID)
    failed = lab.client.wait_for(capture, "Error", timeout=60)  # its retry window is 600 s
    assert failed["packetCaptureError"] == ["StorageFailed"]
    message = failed["packetWatchErrorMessage"]
    assert re.search(r"the storage service refused it: HTTP 403 Authori[a-zA-Z]+: Server failed to authenticate",
                     message), message
    local = status["packetWatchSummary"]["filePaths"][0]
    assert local in message and Path(local).exists()


def test_a_notification_endpoint_failing_five_times_gets_the_event_once(lab):
    capture = _capture(lab, "notify")
    lab.sink.fail_first(capture.arm_id, 5)
    body = {"target": lab.vm1.vm.arm_id, "timeLimitInSeconds": 60,
            "storageLocation": {"filePath": f"/var/captures/e2e/{capture.name}.cap"}}
    assert lab.client.create(capture, body).status_code == 201
    lab.client.wait_for(capture, "Running")
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [d for d in lab.sink.for_subject(capture.arm_id) if d.answered == 200]:
        time.sleep(0.1)
    time.sleep(1.0)
    answers = [d.answered for d in lab.sink.for_subject(capture.arm_id)]
    assert answers == [500] * 5 + [200]
    assert len({d.event["id"] for d in lab.sink.for_subject(capture.arm_id)}) == 1


def test_azurite_stopped_in_the_middle_of_an_upload_loses_nothing(lab):
    capture = _capture(lab, "midway")
    body = {"target": lab.vm1.vm.arm_id, "timeLimitInSeconds": 120, "storageLocation": {"storageId": STORAGE_ID},
            "filters": [{"protocol": "UDP", "localPort": "7330"}]}
    assert lab.client.create(capture, body).status_code == 201
    lab.client.wait_for(capture, "Running")
    send(lab.vm1, [inbound(lab.vm1, "UDP", 7331, 7330, payload=1400)], repeat=60_000)
    blob = _blob_service(lab).get_blob_client(BLOB_CONTAINER, blob_path(lab.vm1.vm, _created(lab, capture)))
    staging = _blob_service(lab).get_blob_client(BLOB_CONTAINER, staging_name(blob.blob_name))  # where the agent writes
    lab.client.stop(capture)
    lab.client.wait_for(capture, "Stopped", timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if staging.get_block_list("uncommitted")[1]:
                break
        except Exception:
            pass
        time.sleep(0.005)
    assert not staging.exists() and not blob.exists(), \
        "the upload finished before Azurite could be stopped in its middle"
    lab.azurite.kill()
    time.sleep(3)
    lab.azurite.start()
    storage_path = lab.client.wait_stored(capture, timeout=90)
    assert _blob_sha256(lab, storage_path) == lab.client.wait_read(capture)["packetWatchSummary"]["sha256"]
    prefix = blob.blob_name.rsplit("/", 1)[0] + "/"
    names = [b.name for b in _blob_service(lab).get_container_client(BLOB_CONTAINER).list_blobs(name_starts_with=prefix)]
    assert names.count(blob.blob_name) == 1
    assert not staging.exists(), "the staging blob is gone once sealed"


def test_an_agent_restarted_between_capture_end_and_upload_still_uploads(lab):
    lab.azurite.stop()
    try:
        capture, status = _run(lab, "restart", 7340, 5, storageId=STORAGE_ID)
        time.sleep(1.0)
        lab.stack.stop(f"agent-{lab.vm1.netns}", signal.SIGKILL)
    finally:
        lab.azurite.start()
    lab.stack.start_agent(lab.vm1)
    storage_path = lab.client.wait_stored(capture, timeout=90)
    assert _blob_sha256(lab, storage_path) == status["packetWatchSummary"]["sha256"]


def test_agents_hold_no_account_key_and_get_a_sas_for_their_one_blob_alone(lab):
    from urllib.parse import parse_qs, urlparse

    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobClient
    from kombu import Connection

    from shared.broker import agent_queue_name
    from shared.resource_ids import VirtualMachineId

    agent = lab.stack.processes[f"agent-{lab.vm1.netns}"]
    environment = Path(f"/proc/{agent.pid}/environ").read_bytes()
    assert b"PACKETWATCH_STORAGE_CONFIG" not in environment and b"AccountKey" not in environment

    vm = VirtualMachineId(lab.vm1.vm.subscription, "no-agent-rg", f"sas-{secrets.token_hex(3)}")
    capture = CaptureId(vm.subscription, vm.resource_group, "e2e-watcher", "sas")
    body = {"target": vm.arm_id, "timeLimitInSeconds": 60, "storageLocation": {"storageId": STORAGE_ID}}
    assert lab.client.create(capture, body).status_code == 201
    with Connection(lab.stack.broker_url) as conn:
        message = conn.channel().basic_get(agent_queue_name(vm), no_ack=True)
    upload = json.loads(message.body)[0][0]["upload"]
    url, query = upload["url"], parse_qs(urlparse(upload["url"]).query)
    name = blob_path(vm, _created(lab, capture))
    assert url.split("?")[0].endswith(f"/{BLOB_CONTAINER}/{UPLOADS_PREFIX}{name}"), \
        "its staging blob, not the capture's"
    assert (query["sp"], query["sr"]) == (["cw"], ["b"]), "create and write, one blob"
    expires = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    # It ends soon after the upload could have: the start deadline (300 s), the time limit (60 s)
    # and the upload's retry window (120 s), then five minutes for clock skew, and no longer.
    lasts = expires - _created(lab, capture).replace(microsecond=0)
    assert timedelta(seconds=300 + 60 + 120) < lasts <= timedelta(seconds=300 + 60 + 120 + 300 + 1), lasts

    BlobClient.from_blob_url(url).upload_blob(b"written with the SAS", overwrite=True)
    with pytest.raises(HttpResponseError) as refused:
        BlobClient.from_blob_url(url).download_blob().readall()
    assert refused.value.status_code == 403, "the SAS cannot read"
    final = url.replace(f"/{UPLOADS_PREFIX}{name}?", f"/{name}?")
    with pytest.raises(HttpResponseError) as refused:
        BlobClient.from_blob_url(final).upload_blob(b"x", overwrite=True)
    assert refused.value.status_code == 403, "the SAS cannot write the capture's own blob"
    elsewhere = url.replace(f"/{name}?", f"/{name.rsplit('/', 1)[0]}/other.cap?")
    with pytest.raises(HttpResponseError) as refused:
        BlobClient.from_blob_url(elsewhere).upload_blob(b"x", overwrite=True)
    assert refused.value.status_code == 403, "the SAS cannot write any other blob"
    assert lab.client.delete(capture).status_code == 202


def test_an_account_reached_through_entra_id_gets_user_delegation_sas_and_no_key_anywhere(lab, tmp_path):
    from urllib.parse import parse_qs, quote, urlparse

    capture, status = _run(lab, "keyless", 7350, 6, payload=64, storageId=lab.entra.storage_id)
    assert status["packetCaptureStatus"] == "Stopped"
    storage_path = lab.client.wait_stored(capture)
    assert storage_path.startswith(f"{lab.entra.azurite.account_url}/{BLOB_CONTAINER}/")
    assert "https://storage.azure.com" in lab.entra.identity.resources, "the API asked its identity for a token"

    where = lab.client.download_url(capture).json()
    query = parse_qs(urlparse(where["url"]).query)
    assert query["skoid"] == [lab.entra.identity.object_id] and query["sp"] == ["r"], "a user-delegation SAS"
    trust = ssl.create_default_context(cafile=str(lab.entra.ca))
    blob = httpx.get(where["url"], verify=trust)
    assert blob.status_code == 200
    assert hashlib.sha256(blob.content).hexdigest() == status["packetWatchSummary"]["sha256"]
    saved = tmp_path / "keyless.cap"
    saved.write_bytes(blob.content)
    records = tshark_records(saved)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in records] == \
        [("UDP", str(lab.vm1.peer), str(lab.vm1.address), 7351, 7350)] * 6

    forged = re.sub(r"sig=[^&]+", "sig=" + quote(base64.b64encode(bytes(32)).decode()), where["url"])
    assert forged != where["url"]
    assert httpx.get(forged, verify=trust).status_code == 403, "Azurite checks the delegation signature"
    agent = lab.stack.processes[f"agent-{lab.vm1.netns}"]
    assert b"IDENTITY_HEADER" not in Path(f"/proc/{agent.pid}/environ").read_bytes(), "the identity stays on the API"
