"""The names of PacketWatch's queues on the broker."""

from __future__ import annotations

import hashlib

from shared.resource_ids import VirtualMachineId

CONTROL_QUEUE = "packetwatch.control"
NOTIFY_QUEUE = "packetwatch.notify"


def agent_queue_name(vm: VirtualMachineId) -> str:
    """One durable queue per VM; the digest keeps distinct VMs apart whatever their names."""
    digest = hashlib.sha256(vm.key.encode()).hexdigest()[:12]
    return f"packetwatch.agent.{vm.computer_name.lower()}.{digest}"
