"""GET list of a watcher at fleet size: the same captures, shaped exactly as GET one shapes
each, every one of them by default (Azure's SDK follows no nextLink here); `$top` and
`$skipToken` page through them with a nextLink, missing or repeating none while captures come
and go; `$expand=status` puts each one's status beside it."""

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from functions.api import create_app
from shared.arm import PacketCaptureParameters, PcStatus
from shared.messages import UploadResult
from shared.config import Settings
from shared.registry import Registry
from shared.registry_records import row_values
from shared.registry_schema import captures
from shared.resource_ids import CaptureId, VirtualMachineId
from tests.integration.conftest import access_config, bearer

API = "?api-version=2026-01-01"
ACCOUNT = "/subscriptions/sub-a/resourceGroups/rg-a/providers/Microsoft.Storage/storageAccounts/pcstore"
VM = VirtualMachineId("sub-a", "rg-a", "vm-list")
BODIES = [
    {"target": VM.arm_id, "storageLocation": {"filePath": "/var/captures/a.cap"}},
    {"target": VM.arm_id, "storageLocation": {"storageId": ACCOUNT}, "timeLimitInSeconds": 60,
     "filters": [{"protocol": "UDP", "localPort": "53", "remoteIPAddress": "198.18.0.1-198.18.0.9"}]},
    {"target": VM.arm_id, "storageLocation": {"storageId": ACCOUNT, "filePath": "/var/captures/b.cap",
                                              "storagePath": "http://127.0.0.1:1/pcstore/kept-here"}},
    {"target": VM.arm_id, "continuousCapture": True, "storageLocation": {"storageId": ACCOUNT,
                                                                         "localPath": "/var/captures/c.cap"},
     "captureSettings": {"fileCount": 3, "fileSizeInBytes": 100000, "sessionTimeLimitInSeconds": 60}},
]


@pytest.fixture
def listing(database_url, broker_url, tmp_path):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"accounts": {"pcstore": {
        "connectionString": "DefaultEndpointsProtocol=http;AccountName=pcstore;AccountKey=c2VjcmV0;"
                            "BlobEndpoint=http://127.0.0.1:1/pcstore;"}}}))
    app = create_app(Settings(database_url=database_url, broker_url=broker_url, storage_config=str(storage),
                              access_config=access_config(tmp_path)))
    with TestClient(app, headers=bearer("contributor-a")) as client:
        yield client, Registry.from_url(database_url)


def _import(registry: Registry, watcher: str, count: int, start: datetime) -> list[CaptureId]:
    made = [CaptureId("sub-a", "rg-a", watcher, f"pc-{n:03d}") for n in range(count)]
    registry.import_captures([(capture, PacketCaptureParameters.model_validate(BODIES[n % len(BODIES)]),
                               start + timedelta(milliseconds=n // 2), PcStatus.STOPPED)  # ties: order by key
                              for n, capture in enumerate(made)])
    return made


def test_the_list_shows_every_capture_as_get_shows_it(listing):
    client, registry = listing
    made = _import(registry, "nw-list", 9, datetime(2026, 3, 1, tzinfo=timezone.utc))
    with registry.engine.begin() as conn:  # a row written by an earlier version, which stored nulls
        old = CaptureId("sub-a", "rg-a", "nw-list", "zz-old")
        values = row_values(old, PacketCaptureParameters.model_validate(BODIES[1]), VM.key, "run",
                            datetime(2026, 3, 2, tzinfo=timezone.utc), old.watcher_path.lower(), PcStatus.STOPPED)
        values["parameters"] = PacketCaptureParameters.model_validate(BODIES[1]).model_dump_json(by_alias=True)
        values["listed"] = None  # no listed properties were stored then
        assert ":null" in values["parameters"]
        conn.execute(insert(captures).values(**values))
    listed = client.get(made[0].watcher_path + "/packetCaptures" + API)
    assert listed.status_code == 200 and "nextLink" not in listed.json()
    items = listed.json()["value"]
    assert [item["name"] for item in items] == [c.name for c in made] + ["zz-old"]
    for item in items:
        assert item == client.get(item["id"] + API).json()
    planned = items[1]["properties"]["storageLocation"]["storagePath"]
    assert planned.startswith("http://127.0.0.1:1/pcstore/network-watcher-logs/subscriptions/sub-a/resourcegroups/")
    assert items[2]["properties"]["storageLocation"]["storagePath"].startswith(
        "http://127.0.0.1:1/pcstore/kept-here/subscriptions/"), "the container storagePath named"
    assert "storagePath" not in items[3]["properties"]["storageLocation"], "a continuous capture has one per file"


def test_stored_list_items_follow_where_the_file_was_stored(listing):
    client, registry = listing
    watcher = CaptureId("sub-a", "rg-a", "nw-stored", "x").watcher_path
    planned = "http://127.0.0.1:1/pcstore/network-watcher-logs/planned.cap"
    made = [CaptureId("sub-a", "rg-a", "nw-stored", f"pc-{n}") for n in range(3)]
    registry.import_captures([(capture, PacketCaptureParameters.model_validate(BODIES[1]),
                               datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(seconds=n), PcStatus.STOPPED)
                              for n, capture in enumerate(made)], planned_path=lambda *_: planned)
    stored = "http://127.0.0.1:1/pcstore/elsewhere/stored \"one\".cap"
    assert registry.apply_upload(UploadResult(capture_id=made[1].arm_id, run_id=registry.get(made[1]).run_id,
                                              storage_path=stored, local_path="/var/captures/b.cap"))
    items = client.get(watcher + "/packetCaptures" + API).json()["value"]
    assert [item["properties"]["storageLocation"]["storagePath"] for item in items] == [planned, stored, planned]
    assert items[1] == client.get(made[1].arm_id + API).json(), "the stored blob and the new etag, as GET shows"
    assert items[1]["etag"] == registry.get(made[1]).etag


def test_pages_follow_next_links_and_miss_or_repeat_nothing_while_captures_come_and_go(listing):
    client, registry = listing
    made = _import(registry, "nw-pages", 10, datetime(2026, 3, 1, tzinfo=timezone.utc))
    link = made[0].watcher_path + "/packetCaptures" + API + "&$top=4"
    seen, pages = [], 0
    while link:
        answer = client.get(link)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["value"]) <= 4
        seen += [item["name"] for item in page["value"]]
        pages += 1
        link = page.get("nextLink")
        if link:
            link = urlparse(link)._replace(scheme="", netloc="").geturl()
        if pages == 1:  # one already seen goes, and a new one comes after the rest
            assert client.delete(made[0].arm_id + API).status_code == 202
            registry.import_captures([(CaptureId("sub-a", "rg-a", "nw-pages", "pc-late"),
                                       PacketCaptureParameters.model_validate(BODIES[0]),
                                       datetime(2026, 3, 2, tzinfo=timezone.utc), PcStatus.STOPPED)])
    assert pages == 3
    assert seen == [c.name for c in made] + ["pc-late"]


@pytest.mark.parametrize("query, field", [("$top=0", "$top"), ("$top=1001", "$top"), ("$top=ten", "$top"),
                                          ("$skipToken=not-a-token", "$skipToken"), ("$expand=properties", "$expand")])
def test_bad_paging_values_get_400_naming_the_parameter(listing, query, field):
    client, _ = listing
    answer = client.get(CaptureId("sub-a", "rg-a", "nw-bad", "x").watcher_path + "/packetCaptures" + API + "&" + query)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["target"] == field


def test_expand_status_gives_each_capture_its_status_in_the_one_answer(listing):
    client, registry = listing
    made = _import(registry, "nw-status", 4, datetime(2026, 3, 1, tzinfo=timezone.utc))
    items = client.get(made[0].watcher_path + "/packetCaptures" + API + "&$expand=status").json()["value"]
    for item in items:
        status = client.post(item["id"] + "/queryStatus" + API).json()
        assert item.pop("packetWatchStatus") == {key: value for key, value in status.items()
                                                 if key not in ("name", "id")}
        assert item == client.get(item["id"] + API).json()
