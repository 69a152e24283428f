"""GET /packetwatch/agents: the agents that report in (VM, version, last seen), limited to
the subscriptions the caller's token covers — PacketWatch's `az vm extension show`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from shared.access import AccessConfig, Role, TokenGrant
from shared.arm import format_arm_time
from shared.registry import Registry
from shared.resource_ids import VirtualMachineId


def build_agent_router(registry: Registry, access: AccessConfig) -> APIRouter:
    router = APIRouter()

    @router.get("/packetwatch/agents")
    def agents(grant: TokenGrant = Depends(requirement(access, Role.READER))) -> JSONResponse:
        listed = [{"vm": agent.vm_id, "version": agent.version, "hostname": agent.hostname,
                   "lastSeen": format_arm_time(agent.last_seen), "runningCaptures": len(agent.running)}
                  for agent in registry.list_agents()
                  if grant.covers(VirtualMachineId.parse(agent.vm_id).subscription)]
        return JSONResponse({"value": listed})

    return router
