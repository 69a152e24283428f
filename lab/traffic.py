"""Known traffic for test VMs: crafted frames, sent in bounded loops, to lab addresses only.

Frames carry a destination MAC that no interface owns, so the receiving kernel drops
them without answering: what a capture sees is exactly what the test sent.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from lab.vms import LabVm, lab_address
from workers.capture.netns import inside

NOBODY_MAC = "02:00:5e:00:00:fe"
MAX_FRAMES = 2_000_000
MAX_SECONDS = 120.0


@dataclass(frozen=True)
class Flow:
    """One crafted packet: `outbound` means the VM sends it, otherwise the VM receives it."""

    protocol: str
    src: str
    dst: str
    sport: int
    dport: int
    outbound: bool
    payload: int = 0

    @property
    def five_tuple(self) -> tuple[str, str, str, int, int]:
        """(protocol, src, dst, sport, dport), as a capture file read back shows the packet."""
        return (self.protocol, self.src, self.dst, self.sport, self.dport)

    def frame(self, vm: LabVm) -> bytes:
        lab_address(self.src)
        lab_address(self.dst)
        layer4 = TCP(sport=self.sport, dport=self.dport, flags="PA") if self.protocol == "TCP" \
            else UDP(sport=self.sport, dport=self.dport)
        src_mac = vm.mac if self.outbound else "02:00:5e:00:00:01"
        return bytes(Ether(src=src_mac, dst=NOBODY_MAC) / IP(src=self.src, dst=self.dst, ttl=64) / layer4
                     / (b"x" * self.payload))


def inbound(vm: LabVm, protocol: str, remote_port: int, local_port: int, payload: int = 0,
            remote: str | None = None) -> Flow:
    return Flow(protocol, remote or str(vm.peer), str(vm.address), remote_port, local_port, False, payload)


def outbound(vm: LabVm, protocol: str, local_port: int, remote_port: int, payload: int = 0,
             remote: str | None = None) -> Flow:
    return Flow(protocol, str(vm.address), remote or str(vm.peer), local_port, remote_port, True, payload)


def send(vm: LabVm, flows: list[Flow], repeat: int = 1, gap: float = 0.0,
         sending: threading.Event | None = None) -> None:
    """Send each flow's frame `repeat` times: inbound ones on the host end of the veth
    (they arrive at the VM), outbound ones from inside the VM. `sending` is set once the
    frames are built and the first is about to go."""
    if len(flows) * repeat > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames per call")
    frames = [(flow.outbound, flow.frame(vm)) for flow in flows]
    with inside(vm.netns):
        vm_socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        vm_socket.bind((vm.vm_if, 0))
    host_socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    host_socket.bind((vm.host_if, 0))
    deadline = time.monotonic() + MAX_SECONDS
    if sending is not None:
        sending.set()
    try:
        for _ in range(repeat):
            for is_outbound, frame in frames:
                (vm_socket if is_outbound else host_socket).send(frame)
                if gap:
                    time.sleep(gap)
            if time.monotonic() > deadline:
                raise TimeoutError("traffic loop ran past its time bound")
    finally:
        vm_socket.close()
        host_socket.close()
