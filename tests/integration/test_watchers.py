"""Network watchers as ARM resources: one per region an agent reports from (as Azure names
them), and every watcher holding captures, located where its captures' VMs are; Get of
any other is 404 (alert captures going to their VM's regional watcher: test_alert_webhook)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from shared.messages import Heartbeat
from shared.resource_ids import VirtualMachineId
from tests.integration.conftest import capture_body

API = "?api-version=2026-03-01"


def _report(client, vm: VirtualMachineId, location: str | None) -> None:
    now = datetime.now(timezone.utc)
    client.app.state.registry.record_heartbeat(Heartbeat(vm_id=vm.arm_id, version="t", hostname="h", reported_at=now,
                                                         location=location), now)


def test_watchers_are_listed_per_region_and_per_capture_and_found_by_name(env):
    client, vm, capture = env
    region = f"region{secrets.token_hex(3)}"
    _report(client, vm, region)
    assert client.put(capture.arm_id + API, json=capture_body(vm)).status_code == 201
    listed = {w["name"]: w for w in client.get("/subscriptions/sub-a/providers/Microsoft.Network/networkWatchers"
                                                 + API).json()["value"]}
    regional = listed[f"NetworkWatcher_{region}"]
    assert regional == {
        "id": f"/subscriptions/sub-a/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/"
              f"NetworkWatcher_{region}", "name": f"NetworkWatcher_{region}",
        "type": "Microsoft.Network/networkWatchers", "location": region, "etag": regional["etag"], "tags": {},
        "properties": {"provisioningState": "Succeeded"}}
    assert listed[capture.network_watcher]["location"] == region, "where its captures' VM is"
    in_group = client.get("/subscriptions/sub-a/resourceGroups/rg-a/providers/Microsoft.Network/networkWatchers"
                          + API).json()["value"]
    assert capture.network_watcher in [w["name"] for w in in_group]
    assert all(w["id"].split("/")[4] == "rg-a" for w in in_group)
    assert client.get(capture.watcher_path + API).json()["name"] == capture.network_watcher
    missing = client.get(capture.watcher_path.replace(capture.network_watcher, "nobody-here") + API)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    other = client.get("/subscriptions/sub-b/providers/Microsoft.Network/networkWatchers" + API)
    assert other.status_code == 403, "a token sees only its subscriptions' watchers"


def test_subscriptions_are_those_the_token_covers(env):
    client, vm, capture = env
    assert client.put(capture.arm_id + API, json=capture_body(vm)).status_code == 201
    listed = client.get("/subscriptions?api-version=2022-12-01").json()["value"]
    assert listed == [{"id": "/subscriptions/sub-a", "subscriptionId": "sub-a", "displayName": "sub-a",
                       "state": "Enabled"}], "contributor-a covers sub-a only"
    assert client.get("/subscriptions", headers={"Authorization": "Bearer nobody"}).status_code == 401
