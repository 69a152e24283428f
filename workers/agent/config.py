"""What an agent is started with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.arm import PacketCaptureFilter
from shared.resource_ids import VirtualMachineId
from workers.capture.look_back import LookBackSettings

STATE_FOLDER = ".agent"  # under the capture dir: each agent's journal and look-back ring, never uploaded


@dataclass(frozen=True)
class AgentConfig:
    vm: VirtualMachineId
    interface: str
    netns: str | None
    capture_dir: Path
    broker_url: str
    heartbeat_seconds: float = 10.0
    probes: tuple[str, int] = ("127.0.0.1", 0)  # where /metrics, /healthz and /readyz are served; port 0: nowhere
    location: str | None = None  # the VM's Azure region (its network watcher is that region's)
    look_back: LookBackSettings | None = None  # the standing ring; off by default
    look_back_filters: tuple[PacketCaptureFilter, ...] = ()  # what it keeps (ARM filters; none: everything)
