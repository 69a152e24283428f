"""The kernel BPF program compiled from filters keeps exactly the packets the plain
Python reference matcher keeps (property-based, random filters and random packets)."""

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from shared.arm import PacketCaptureFilter
from shared.bpf import compile_filters
from shared.errors import InvalidField
from shared.filter_values import AddressSet
from shared.filters import PacketTuple, packet_matches, parse_filters

V4 = [f"198.18.0.{i}" for i in range(1, 9)]
V6 = [f"2001:db8::{i}" for i in range(1, 5)]
MAC = "02:00:00:00:00:01"
PORTS = [1, 2, 3, 5, 8, 13, 80, 443, 65535]


def _address_element(pool):
    single = st.sampled_from(pool)
    ranged = st.tuples(st.sampled_from(pool), st.sampled_from(pool)).map(
        lambda pair: "-".join(sorted(pair, key=lambda a: int(ipaddress.ip_address(a)))))
    return st.one_of(single, ranged)


addresses_text = st.one_of(
    st.lists(_address_element(V4), min_size=1, max_size=3),
    st.lists(_address_element(V6), min_size=1, max_size=2),
    st.lists(st.one_of(_address_element(V4), _address_element(V6), st.just("198.18.0.0/30")), min_size=1, max_size=3),
).flatmap(lambda parts: st.sampled_from([";", ","]).map(lambda sep: sep.join(parts)))

port_element = st.one_of(
    st.sampled_from(PORTS).map(str),
    st.tuples(st.sampled_from(PORTS), st.sampled_from(PORTS)).map(lambda p: f"{min(p)}-{max(p)}"),
)
ports_text = st.lists(port_element, min_size=1, max_size=3).map(";".join)

filters = st.lists(
    st.builds(
        PacketCaptureFilter,
        protocol=st.sampled_from(["TCP", "UDP", "Any"]),
        local_ip_address=st.none() | addresses_text,
        remote_ip_address=st.none() | addresses_text,
        local_port=st.none() | ports_text,
        remote_port=st.none() | ports_text,
    ),
    max_size=3,
)


@st.composite
def packets(draw):
    kind = draw(st.sampled_from(["v4", "v6", "arp"]))
    if kind == "arp":
        return bytes(Ether(src=MAC, dst=MAC) / ARP(psrc=V4[0], pdst=V4[1])), PacketTuple()
    pool = V4 if kind == "v4" else V6
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    sport, dport = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
    network = IP(src=src, dst=dst) if kind == "v4" else IPv6(src=src, dst=dst)
    if proto == "icmp":
        return bytes(Ether(src=MAC, dst=MAC) / network / ICMP()), PacketTuple(
            1 if kind == "v4" else 58, ipaddress.ip_address(src), ipaddress.ip_address(dst))
    layer = TCP(sport=sport, dport=dport) if proto == "tcp" else UDP(sport=sport, dport=dport)
    number = 6 if proto == "tcp" else 17
    return bytes(Ether(src=MAC, dst=MAC) / network / layer), PacketTuple(
        number, ipaddress.ip_address(src), ipaddress.ip_address(dst), sport, dport)


vm_addresses = st.lists(st.sampled_from(V4 + V6), max_size=3).map(
    lambda items: AddressSet.of([ipaddress.ip_address(a) for a in items]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters=filters, vm=vm_addresses, batch=st.lists(packets(), min_size=1, max_size=12))
def test_compiled_kernel_filter_agrees_with_reference_matcher(filters, vm, batch):
    specs = parse_filters(filters)
    try:
        program = compile_filters(specs, vm)
    except InvalidField:
        assert not any(packet_matches(specs, vm, packet) for _, packet in batch)
        return
    for frame, packet in batch:
        assert program.matches(frame) == packet_matches(specs, vm, packet), (program.expression, packet)


def test_the_property_is_not_vacuous():
    """Both outcomes occur: a filter list keeps some packets and drops others."""
    specs = parse_filters([PacketCaptureFilter(protocol="TCP", local_port="80")])
    vm = AddressSet.of([ipaddress.ip_address(V4[0])])
    program = compile_filters(specs, vm)
    kept = bytes(Ether(src=MAC, dst=MAC) / IP(src=V4[1], dst=V4[0]) / TCP(sport=5, dport=80))
    reply = bytes(Ether(src=MAC, dst=MAC) / IP(src=V4[0], dst=V4[1]) / TCP(sport=80, dport=5))
    wrong_side = bytes(Ether(src=MAC, dst=MAC) / IP(src=V4[0], dst=V4[1]) / TCP(sport=5, dport=80))
    assert program.matches(kept) and program.matches(reply) and not program.matches(wrong_side)


def test_compiled_expression_never_contains_user_text():
    hostile = PacketCaptureFilter(protocol="UDP", remote_port="53;   53")
    program = compile_filters(parse_filters([hostile]))
    assert "   " not in program.expression
    assert program.expression == "((udp) and (((dst port 53)) or ((src port 53))))"
