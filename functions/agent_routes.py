"""GET /packetwatch/agents: the agents that report in (VM, version, last seen, online or
offline), limited to the subscriptions the caller's token covers — PacketWatch's `az vm
extension show`. An agent is offline once it has missed SILENT_HEARTBEATS heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from shared.access import AccessConfig, Action, Grant
from shared.api_views import AgentView
from shared.arm import format_arm_time
from shared.messages import SILENT_HEARTBEATS
from shared.registry import Registry
from shared.resource_ids import VirtualMachineId


def build_agent_router(registry: Registry, access: AccessConfig, heartbeat_seconds: float) -> APIRouter:
    router = APIRouter()
    silent_after = timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)

    @router.get("/packetwatch/agents")
    def agents(grant: Grant = Depends(requirement(access, Action.READ))) -> JSONResponse:
        now = datetime.now(timezone.utc)
        listed = []
        for agent in registry.list_agents():
            vm = VirtualMachineId.parse(agent.vm_id)
            if not grant.permits(Action.READ, vm.arm_id):  # agents of VMs where its roles reach
                continue
            instance = {"scale_set": vm.scale_set_id.arm_id, "instance_id": vm.name} if vm.scale_set is not None \
                else {}  # an instance: which scale set, which instance
            listed.append(AgentView(
                vm=agent.vm_id, version=agent.version, hostname=agent.hostname, interface=agent.interface,
                location=agent.location, last_seen=format_arm_time(agent.last_seen),
                running_captures=len(agent.running),
                status="online" if now - agent.last_seen <= silent_after else "offline", **instance).to_arm())
        return JSONResponse({"value": listed})

    return router
