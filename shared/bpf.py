"""Compile parsed filters into a classic BPF program for the kernel.

The pcap-filter expression handed to libpcap's compiler is assembled here from typed
values only (ipaddress networks and integers), never from user text, so nothing a user
types can change its structure.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from shared import libpcap
from shared.errors import InvalidField
from shared.filter_values import AddressSet, PortSet
from shared.filters import IPPROTO_TCP, FilterSpec

BPF_MAXINSNS = 4096
MAX_SNAPLEN = 262144


@dataclass(frozen=True)
class BpfProgram:
    expression: str
    instructions: tuple[tuple[int, int, int, int], ...]

    def as_struct(self) -> tuple[libpcap.BpfProgramStruct, ctypes.Array]:
        """A bpf_program for libpcap calls; keep the array alive as long as the struct."""
        insns = (libpcap.BpfInsn * len(self.instructions))(*(libpcap.BpfInsn(*i) for i in self.instructions))
        return libpcap.BpfProgramStruct(len(self.instructions), insns), insns

    def matches(self, frame: bytes) -> bool:
        """Run the program over one Ethernet frame with libpcap's BPF interpreter."""
        program, _keep = self.as_struct()
        header = libpcap.PcapPkthdr(libpcap.Timeval(0, 0), len(frame), len(frame))
        return libpcap.lib().pcap_offline_filter(ctypes.byref(program), ctypes.byref(header), frame) != 0


def _addresses(direction: str, addresses: AddressSet) -> str:
    terms = [
        f"{direction} host {net.network_address}" if net.prefixlen == net.max_prefixlen
        else f"{direction} net {net.with_prefixlen}"
        for net in addresses.networks()
    ]
    return "(" + " or ".join(terms) + ")"


def _ports(direction: str, ports: PortSet) -> str:
    terms = [f"{direction} port {lo}" if lo == hi else f"{direction} portrange {lo}-{hi}" for lo, hi in ports.ranges]
    return "(" + " or ".join(terms) + ")"


def _by_version(addresses: AddressSet | None) -> dict[int, AddressSet | None]:
    """Per IP version, the addresses of that version; None means unconstrained."""
    if addresses is None:
        return {4: None, 6: None}
    return {version: part for version, part in ((4, AddressSet(v4=addresses.v4)), (6, AddressSet(v6=addresses.v6)))
            if part.v4 or part.v6}


def _side(spec: FilterSpec, local: AddressSet | None, outbound: bool) -> str | None:
    """One direction of a filter; None when its addresses share no IP version."""
    near, far = ("src", "dst") if outbound else ("dst", "src")
    ports = []
    if spec.local_ports is not None:
        ports.append(_ports(near, spec.local_ports))
    if spec.remote_ports is not None:
        ports.append(_ports(far, spec.remote_ports))
    if local is None and spec.remote_addresses is None:
        return "(" + " and ".join(ports) + ")"
    locals_, remotes = _by_version(local), _by_version(spec.remote_addresses)
    variants = []
    for version in (4, 6):
        if version not in locals_ or version not in remotes:
            continue
        terms = [_addresses(direction, part) for direction, part in ((near, locals_[version]), (far, remotes[version]))
                 if part is not None]
        family = "ip" if version == 4 else "ip6"
        variants.append("(" + " and ".join([family] + terms + ports) + ")")
    return "(" + " or ".join(variants) + ")" if variants else None


def filter_expression(spec: FilterSpec, vm_addresses: AddressSet | None) -> str | None:
    """pcap-filter text for one filter: "" when it matches every packet, None when none."""
    if spec.matches_everything:
        return ""
    terms = []
    protocols = spec.protocols
    if protocols is not None:
        names = sorted("tcp" if proto == IPPROTO_TCP else "udp" for proto in protocols)
        terms.append("(" + " or ".join(names) + ")")
    local = spec.local_side(vm_addresses)
    if local is not None or spec.is_directional:
        sides = [side for side in (_side(spec, local, True), _side(spec, local, False)) if side is not None]
        if not sides:
            return None
        terms.append("(" + " or ".join(sides) + ")")
    elif protocols is None:
        terms.append("(ip or ip6)")
    return " and ".join(terms)


def expression(specs: tuple[FilterSpec, ...], vm_addresses: AddressSet | None) -> str:
    """The whole list: any filter may match. InvalidField when no packet can match any."""
    parts = [filter_expression(spec, vm_addresses) for spec in specs]
    if not parts or "" in parts:
        return ""
    possible = [part for part in parts if part is not None]
    if not possible:
        raise InvalidField("filters", f"{len(parts)} filters",
                           "no packet can match them: their local and remote addresses share no IP version")
    return " or ".join(f"({part})" for part in possible)


def compile_filters(
    specs: tuple[FilterSpec, ...], vm_addresses: AddressSet | None = None, snaplen: int = MAX_SNAPLEN
) -> BpfProgram:
    text = expression(specs, vm_addresses)
    pcap = libpcap.lib()
    dead = pcap.pcap_open_dead(libpcap.DLT_EN10MB, snaplen or MAX_SNAPLEN)
    program = libpcap.BpfProgramStruct()
    try:
        # optimize=0: libpcap 1.10's optimizer merges the or-chains of these expressions
        # wrongly (a packet inside a local range was dropped; the property test found it).
        if pcap.pcap_compile(dead, ctypes.byref(program), text.encode(), 0, libpcap.PCAP_NETMASK_UNKNOWN) != 0:
            message = (pcap.pcap_geterr(dead) or b"").decode(errors="replace")
            raise InvalidField("filters", text, f"cannot be compiled: {message}")
        insns = tuple(
            (program.bf_insns[i].code, program.bf_insns[i].jt, program.bf_insns[i].jf, program.bf_insns[i].k)
            for i in range(program.bf_len)
        )
        pcap.pcap_freecode(ctypes.byref(program))
    finally:
        pcap.pcap_close(dead)
    if len(insns) > BPF_MAXINSNS:
        raise InvalidField("filters", f"{len(insns)} BPF instructions",
                           f"the filters compile to more than the kernel's {BPF_MAXINSNS} instructions")
    return BpfProgram(text, insns)
