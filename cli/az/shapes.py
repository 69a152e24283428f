"""Objects shaped as az prints them: ARM resources with `properties` flattened into the
top level (as the Azure SDK's models are) and `resourceGroup` added; an agent as
`az vm extension show` prints the NetworkWatcherAgentLinux extension."""

from __future__ import annotations

from typing import Any

from shared.api_views import AgentView
from shared.resource_ids import VirtualMachineId

EXTENSION = "NetworkWatcherAgentLinux"
PUBLISHER = "Microsoft.Azure.NetworkWatcher"


def resource_group(arm_id: str) -> str:
    parts = arm_id.split("/")
    return parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""


def flattened(resource: dict[str, Any]) -> dict[str, Any]:
    """`properties` merged into the top level, plus `resourceGroup`, as az shows a resource."""
    shaped = {key: value for key, value in resource.items() if key != "properties"}
    shaped.update(resource.get("properties") or {})
    if "id" in shaped:
        shaped["resourceGroup"] = resource_group(shaped["id"])
    return shaped


def vm_extension(agent: AgentView) -> dict[str, Any]:
    """The agent of a VM in the shape of `az vm extension show --name NetworkWatcherAgentLinux`."""
    vm = VirtualMachineId.parse(agent.vm, "vm")
    online = agent.status == "online"
    return {
        "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": None, "forceUpdateTag": None,
        "id": f"{vm.arm_id}/extensions/{EXTENSION}",
        "instanceView": {
            "name": EXTENSION, "type": f"{PUBLISHER}.{EXTENSION}", "typeHandlerVersion": agent.version,
            "statuses": [{"code": "ProvisioningState/succeeded" if online else "ProvisioningState/failed",
                          "displayStatus": "Provisioning succeeded" if online else "Agent not reporting",
                          "level": "Info" if online else "Error",
                          "message": f"PacketWatch agent {agent.version} on {agent.hostname} "
                                     f"({agent.interface or '?'}), {agent.status}, last seen "
                                     f"{agent.last_seen}, {agent.running_captures} captures running",
                          "time": agent.last_seen}],
            "substatuses": None},
        "location": agent.location, "name": EXTENSION, "protectedSettings": None,
        "protectedSettingsFromKeyVault": None, "provisionAfterExtensions": None,
        "provisioningState": "Succeeded" if online else "Failed", "publisher": PUBLISHER,
        "resourceGroup": vm.resource_group, "settings": None, "suppressFailures": None, "tags": None,
        "type": "Microsoft.Compute/virtualMachines/extensions", "typeHandlerVersion": agent.version,
        "typePropertiesType": EXTENSION,
    }
