"""Test VMs made of network namespaces and veth pairs, with addresses from 198.18.0.0/15.

Each VM is a namespace holding one end of a veth pair (the VM's NIC, with its address);
the other end stays in the root namespace with no address, so the host's stack never
answers or forwards anything: the test sends and receives raw frames on it.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
from dataclasses import dataclass

from shared.resource_ids import VirtualMachineId

LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")


class LabError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _sysctl(netns: str | None, key: str, value: str) -> None:
    command = ["sysctl", "-q", "-w", f"{key}={value}"]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    subprocess.run(command, capture_output=True, timeout=15, check=True)


def lab_address(text: str) -> ipaddress.IPv4Address:
    address = ipaddress.IPv4Address(text)
    if address not in LAB_NETWORK:
        raise LabError(f"{address} is outside {LAB_NETWORK}; lab traffic stays in that range")
    return address


@dataclass(frozen=True)
class LabVm:
    netns: str
    host_if: str
    vm_if: str
    address: ipaddress.IPv4Address
    peer: ipaddress.IPv4Address
    mac: str
    vm: VirtualMachineId


def create_vms(count: int, subscription: str = "00000000-0000-0000-0000-00000000lab0",
               resource_group: str = "lab-rg", scale_set: str | None = None) -> list[LabVm]:
    """Create `count` VMs; their subnet 198.18.N.0/24 differs per VM and per call. With
    `scale_set`, they are that scale set's instances 0, 1, …"""
    tag = secrets.token_hex(2)
    base = secrets.randbelow(200)
    vms = []
    try:
        for index in range(count):
            name = f"pw{tag}{index}"
            address = lab_address(f"198.18.{base + index}.2")
            mac = f"02:50:57:{secrets.randbelow(256):02x}:{base + index:02x}:02"
            vm = LabVm(name, f"{name}h", f"{name}v", address, lab_address(f"198.18.{base + index}.1"), mac,
                       VirtualMachineId(subscription, resource_group, str(index), scale_set) if scale_set
                       else VirtualMachineId(subscription, resource_group, f"vm{index + 1}-{tag}"))
            _ip("netns", "add", vm.netns)
            vms.append(vm)
            _ip("link", "add", vm.host_if, "type", "veth", "peer", "name", vm.vm_if)
            _ip("link", "set", vm.vm_if, "netns", vm.netns)
            _ip("-n", vm.netns, "link", "set", vm.vm_if, "address", vm.mac)
            for netns, ifname in ((None, vm.host_if), (vm.netns, vm.vm_if)):
                _sysctl(netns, f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
            _ip("-n", vm.netns, "addr", "add", f"{vm.address}/24", "dev", vm.vm_if)
            _ip("-n", vm.netns, "link", "set", vm.vm_if, "up")
            _ip("-n", vm.netns, "link", "set", "lo", "up")
            _ip("link", "set", vm.host_if, "up")
    except Exception:
        remove_vms(vms)
        raise
    return vms


def remove_vms(vms: list[LabVm]) -> None:
    for vm in vms:
        subprocess.run(["ip", "link", "del", vm.host_if], capture_output=True, timeout=15)
        subprocess.run(["ip", "netns", "del", vm.netns], capture_output=True, timeout=15)
