"""Packet-capture filters: parsed from ARM's strings into typed values, and the plain
Python reference matcher that defines what they mean.

Meaning: a packet is kept when ANY filter matches; inside a filter ALL given fields must
match; "local" is the VM's own side, and both directions of a flow match. When a filter
names a remote address or a port but no local address, the local side is the VM's own
addresses, so that local and remote are told apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
import ipaddress
from dataclasses import dataclass

from shared.arm import PacketCaptureFilter, PcProtocol
from shared.errors import Collector, InvalidField
from shared.filter_values import AddressSet, PortSet, parse_addresses, parse_ports

IPPROTO_TCP = 6
IPPROTO_UDP = 17
MAX_FILTERS = 64

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

T = TypeVar("T")


@dataclass(frozen=True)
class FilterSpec:
    protocol: PcProtocol = PcProtocol.ANY
    local_addresses: AddressSet | None = None
    remote_addresses: AddressSet | None = None
    local_ports: PortSet | None = None
    remote_ports: PortSet | None = None

    @property
    def protocols(self) -> frozenset[int] | None:
        """IP protocol numbers this filter admits; None when any packet will do."""
        if self.protocol is PcProtocol.TCP:
            return frozenset({IPPROTO_TCP})
        if self.protocol is PcProtocol.UDP:
            return frozenset({IPPROTO_UDP})
        if self.local_ports or self.remote_ports:
            return frozenset({IPPROTO_TCP, IPPROTO_UDP})
        return None

    @property
    def is_directional(self) -> bool:
        """True when the filter has fields that say which side is local."""
        return any((self.remote_addresses, self.local_ports, self.remote_ports))

    @property
    def matches_everything(self) -> bool:
        return self.protocols is None and self.local_addresses is None and not self.is_directional

    def local_side(self, vm_addresses: AddressSet | None) -> AddressSet | None:
        if self.local_addresses is not None:
            return self.local_addresses
        if self.is_directional and vm_addresses is not None and (vm_addresses.v4 or vm_addresses.v6):
            return vm_addresses
        return None


def parse_filter(source: PacketCaptureFilter, prefix: str = "filters[0]") -> FilterSpec:
    """The filter as typed values; InvalidField naming every field of it that is wrong."""
    checks = Collector()

    def field(name: str, value: str | None, parse: Callable[[str, str], T]) -> T | None:
        return None if value is None else checks.check(_at, prefix, parse, name, value)

    spec = FilterSpec(
        protocol=source.protocol,
        local_addresses=field("localIPAddress", source.local_ip_address, parse_addresses),
        remote_addresses=field("remoteIPAddress", source.remote_ip_address, parse_addresses),
        local_ports=field("localPort", source.local_port, parse_ports),
        remote_ports=field("remotePort", source.remote_port, parse_ports),
    )
    checks.raise_any()
    return spec


def _at(prefix: str, parse: Callable[[str, str], T], name: str, value: str) -> T:
    try:
        return parse(name, value)
    except InvalidField as exc:
        raise exc.at(prefix) from None


def parse_filters(sources: list[PacketCaptureFilter], field: str = "filters") -> tuple[FilterSpec, ...]:
    if len(sources) > MAX_FILTERS:
        raise InvalidField(field, f"{len(sources)} filters", f"at most {MAX_FILTERS} filters are allowed")
    checks = Collector()
    specs = [checks.check(parse_filter, source, f"{field}[{index}]") for index, source in enumerate(sources)]
    checks.raise_any()
    return tuple(spec for spec in specs if spec is not None)  # all of them, once none failed


@dataclass(frozen=True)
class PacketTuple:
    """What the matcher needs to know of a packet; None fields for what it does not carry."""

    protocol: int | None = None
    src: IPAddress | None = None
    dst: IPAddress | None = None
    sport: int | None = None
    dport: int | None = None


def _side_matches(spec: FilterSpec, local: AddressSet | None, packet: PacketTuple, outbound: bool) -> bool:
    local_ip, remote_ip = (packet.src, packet.dst) if outbound else (packet.dst, packet.src)
    local_port, remote_port = (packet.sport, packet.dport) if outbound else (packet.dport, packet.sport)
    for addresses, ip in ((local, local_ip), (spec.remote_addresses, remote_ip)):
        if addresses is not None and (ip is None or ip not in addresses):
            return False
    for ports, port in ((spec.local_ports, local_port), (spec.remote_ports, remote_port)):
        if ports is not None and (port is None or port not in ports):
            return False
    return True


def filter_matches(spec: FilterSpec, vm_addresses: AddressSet | None, packet: PacketTuple) -> bool:
    if spec.matches_everything:
        return True
    protocols = spec.protocols
    if packet.src is None:
        return False
    if protocols is not None and packet.protocol not in protocols:
        return False
    local = spec.local_side(vm_addresses)
    return _side_matches(spec, local, packet, True) or _side_matches(spec, local, packet, False)


def packet_matches(specs: tuple[FilterSpec, ...], vm_addresses: AddressSet | None, packet: PacketTuple) -> bool:
    """The reference meaning of a filter list: no filters keep everything."""
    return not specs or any(filter_matches(spec, vm_addresses, packet) for spec in specs)
