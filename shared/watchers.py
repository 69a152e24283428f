"""Network watchers as resources (ARM's NetworkWatchers Get, List and ListAll). Azure keeps
one watcher per region, `NetworkWatcher_<region>` in `NetworkWatcherRG`; PacketWatch has one
for every region an agent of the subscription reports from (its VM's location), and every
watcher a capture was created in. A watcher's location is its region; a watcher with
another name takes the region of the VMs its captures target."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, select

from shared.api_views import NetworkWatcher
from shared.registry_schema import agents, captures

REGIONAL_GROUP = "NetworkWatcherRG"
REGIONAL_PREFIX = "NetworkWatcher_"
UNKNOWN_LOCATION = "global"


def regional_watcher(location: str) -> tuple[str, str]:
    """(resource group, name) of a region's watcher, as Azure names it."""
    return REGIONAL_GROUP, f"{REGIONAL_PREFIX}{location.lower()}"


@dataclass(frozen=True)
class Watcher:
    subscription: str
    resource_group: str
    name: str
    location: str

    @property
    def arm_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Network/networkWatchers/{self.name}")

    def to_arm(self) -> dict:
        return NetworkWatcher(id=self.arm_id, name=self.name, location=self.location).to_arm()


def _watcher_of(capture_arm_id: str) -> tuple[str, str]:
    """(resource group, name) from a capture's resource ID."""
    parts = capture_arm_id.split("/")
    return parts[4], parts[8]


def watchers(engine: Engine, subscription: str) -> list[Watcher]:
    """The subscription's watchers: regional ones first, then the others, by name."""
    prefix = f"/subscriptions/{subscription}/".lower()
    with engine.connect() as conn:
        regions = sorted({row.location.lower() for row in conn.execute(
            select(agents.c.location).where(agents.c.vm_key.startswith(prefix, autoescape=True),
                                            agents.c.location.is_not(None)).distinct())})
        rows = conn.execute(select(captures.c.arm_id, captures.c.watcher_key, agents.c.location)
                            .select_from(captures.outerjoin(agents, agents.c.vm_key == captures.c.target_key))
                            .where(captures.c.key.startswith(prefix, autoescape=True),
                                   captures.c.watcher_key.not_like("%/packetcaptures/%"))).all()
    found = {regional_watcher(region)[1].lower(): Watcher(subscription, REGIONAL_GROUP, regional_watcher(region)[1],
                                                         region) for region in regions}
    others: dict[str, tuple[str, str, Counter]] = {}
    for row in rows:
        group, name = _watcher_of(row.arm_id)
        entry = others.setdefault(row.watcher_key, (group, name, Counter()))
        if row.location:
            entry[2][row.location.lower()] += 1
    for key, (group, name, locations) in sorted(others.items(), key=lambda item: item[1][1].lower()):
        if group.lower() == REGIONAL_GROUP.lower() and name.lower() in found:
            continue
        if name.lower().startswith(REGIONAL_PREFIX.lower()):
            location = name[len(REGIONAL_PREFIX):].lower()
        else:
            location = locations.most_common(1)[0][0] if locations else UNKNOWN_LOCATION
        found[key] = Watcher(subscription, group, name, location)
    return list(found.values())


def known_subscriptions(engine: Engine) -> list[str]:
    """Every subscription an agent reports from or a capture was made in."""
    with engine.connect() as conn:
        ids = list(conn.execute(select(agents.c.vm_id)).scalars()) + list(conn.execute(
            select(captures.c.arm_id).where(captures.c.watcher_key.not_like("%/packetcaptures/%"))).scalars())
    return sorted({resource_id.split("/")[2] for resource_id in ids}, key=str.lower)
