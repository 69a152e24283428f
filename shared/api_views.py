"""The API's answers that are not packet captures, as typed models both sides use: the API
answers with them, the typed client (cli/arm_client.py) parses into them.

- AgentView: one agent that reports in (GET /packetwatch/agents).
- FileLocation: where a capture's file is (GET …/downloadUrl): a read-only SAS URL for a
  stored blob, or the VM and path of a file kept there; a scale set capture's, one per instance.
- NetworkWatcher: ARM's network watcher resource (NetworkWatchers Get, List, ListAll).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.arm import ArmModel


class AgentView(ArmModel):
    """An agent as the API lists it. Fields it was given as null (an agent that has not
    reported its interface or region) stay null in its JSON; the scale set fields are there
    for an instance only."""

    vm: str
    version: str
    hostname: str
    interface: str | None
    location: str | None
    last_seen: str = Field(alias="lastSeen")
    running_captures: int = Field(alias="runningCaptures")
    status: str  # online | offline
    scale_set: str | None = Field(default=None, alias="scaleSet")
    instance_id: str | None = Field(default=None, alias="instanceId")

    def to_arm(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class AgentList(ArmModel):
    value: list[AgentView] = Field(default_factory=list)


class FileLocation(ArmModel):
    """A stored blob's `url` (with `expiresOn` and `blob`), or a kept file's `target`,
    `filePath` and `message`; a scale set capture's `instances`, each with its `instanceId`."""

    url: str | None = None
    expires_on: str | None = Field(default=None, alias="expiresOn")
    blob: str | None = None
    target: str | None = None
    file_path: str | None = Field(default=None, alias="filePath")
    message: str | None = None
    instance_id: str | None = Field(default=None, alias="instanceId")
    instances: list[FileLocation] | None = None


class NetworkWatcher(ArmModel):
    id: str
    name: str
    type: str = "Microsoft.Network/networkWatchers"
    location: str
    etag: str = 'W/"00000000-0000-0000-0000-000000000000"'
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=lambda: {"provisioningState": "Succeeded"})

    @property
    def resource_group(self) -> str:
        return self.id.split("/")[4]


class NetworkWatcherList(ArmModel):
    value: list[NetworkWatcher] = Field(default_factory=list)
