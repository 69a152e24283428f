"""GET /packetwatch/agents: the agents that report in (VM, version, last seen, online or
offline), limited to the subscriptions the caller's token covers — PacketWatch's `az vm
extension show`. An agent is offline once it has missed SILENT_HEARTBEATS heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from shared.access import AccessConfig, Role, TokenGrant
from shared.arm import format_arm_time
from shared.messages import SILENT_HEARTBEATS
from shared.registry import Registry
from shared.resource_ids import VirtualMachineId


def build_agent_router(registry: Registry, access: AccessConfig, heartbeat_seconds: float) -> APIRouter:
    router = APIRouter()
    silent_after = timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)

    @router.get("/packetwatch/agents")
    def agents(grant: TokenGrant = Depends(requirement(access, Role.READER))) -> JSONResponse:
        now = datetime.now(timezone.utc)
        listed = []
        for agent in registry.list_agents():
            vm = VirtualMachineId.parse(agent.vm_id)
            if not grant.covers(vm.subscription):
                continue
            entry = {"vm": agent.vm_id, "version": agent.version, "hostname": agent.hostname,
                     "interface": agent.interface, "location": agent.location,
                     "lastSeen": format_arm_time(agent.last_seen), "runningCaptures": len(agent.running),
                     "status": "online" if now - agent.last_seen <= silent_after else "offline"}
            if vm.scale_set is not None:  # an instance: which scale set, which instance
                entry |= {"scaleSet": vm.scale_set_id.arm_id, "instanceId": vm.name}
            listed.append(entry)
        return JSONResponse({"value": listed})

    return router
