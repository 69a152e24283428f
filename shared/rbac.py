"""Who may do what, where: ARM's role-based access control, as far as packet captures need it.

An action is one of the packet-capture operations, spelled as ARM spells them
(`Microsoft.Network/networkWatchers/packetCaptures/write`). A role is a set of actions; a role
assignment grants one at a scope (`/subscriptions/S`, `…/resourceGroups/R`, or one network
watcher, `…/providers/Microsoft.Network/networkWatchers/W`) and, as in ARM, everything below
it. A resource is below a scope when the scope is a prefix of its ID, segment by segment,
ignoring case.
"""

from __future__ import annotations

from enum import Enum

CAPTURES = "Microsoft.Network/networkWatchers/packetCaptures"


class Action(str, Enum):
    READ = f"{CAPTURES}/read"
    WRITE = f"{CAPTURES}/write"
    DELETE = f"{CAPTURES}/delete"
    QUERY_STATUS = f"{CAPTURES}/queryStatus/action"
    STOP = f"{CAPTURES}/stop/action"


class Role(str, Enum):
    """The built-in roles: a reader reads and asks for status; a contributor does everything."""

    READER = "reader"
    CONTRIBUTOR = "contributor"

    @property
    def actions(self) -> frozenset[Action]:
        if self is Role.READER:
            return frozenset({Action.READ, Action.QUERY_STATUS})
        return frozenset(Action)


def _segments(arm_id: str) -> list[str]:
    return [part.lower() for part in arm_id.strip("/").split("/") if part]


def within(resource: str, scope: str) -> bool:
    """Whether `resource` is `scope` or below it."""
    outer = _segments(scope)
    return _segments(resource)[:len(outer)] == outer


def scope_of(path_params: dict[str, str]) -> str:
    """The ARM scope a request's path names: as deep as its parameters go."""
    scope = ""
    for parameter, segment in (("subscriptionId", "subscriptions"), ("resourceGroupName", "resourceGroups"),
                               ("networkWatcherName", "providers/Microsoft.Network/networkWatchers"),
                               ("packetCaptureName", "packetCaptures")):
        if parameter not in path_params:
            break
        scope += f"/{segment}/{path_params[parameter]}"
    return scope or "/"
