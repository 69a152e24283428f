"""Lab VMs for `packetwatch up --lab N`: network namespaces with an agent each and a little
known traffic every second, so the console and the CLI have something to capture.
The traffic stays on the lab's own addresses (198.18.0.0/15) and stops by itself after
TOUR_SECONDS."""

from __future__ import annotations

import threading
import time

from lab.traffic import inbound, outbound, send
from lab.vms import LabVm, create_vms, remove_vms

TOUR_SECONDS = 3600
TICK_SECONDS = 1.0


def tour_traffic(vm: LabVm) -> list:
    """What each lab VM sees every second: a web request and its answer, and a DNS query."""
    return [inbound(vm, "TCP", 40000, 443, payload=64), outbound(vm, "TCP", 443, 40000, payload=512),
            outbound(vm, "UDP", 41000, 53, payload=32)]


class Traffic(threading.Thread):
    """Known traffic on each lab VM every second, for at most TOUR_SECONDS."""

    def __init__(self, vms: list[LabVm]) -> None:
        super().__init__(name="lab-traffic", daemon=True)
        self.vms = vms
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + TOUR_SECONDS
        while not self.stopping.wait(TICK_SECONDS) and time.monotonic() < deadline:
            for vm in self.vms:
                send(vm, tour_traffic(vm))

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


class Tour:
    """`packetwatch up --lab N`: N lab VMs, each to get an agent, and their traffic."""

    def __init__(self, count: int, subscription: str, resource_group: str) -> None:
        self.vms = create_vms(count, subscription, resource_group)
        self.traffic = Traffic(self.vms)

    def remove(self) -> None:
        remove_vms(self.vms)
