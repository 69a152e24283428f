import ipaddress

import pytest

from shared.arm import PacketCaptureFilter
from shared.errors import InvalidField
from shared.filter_values import parse_addresses, parse_ports
from shared.filters import parse_filters


@pytest.mark.parametrize("text, inside, outside", [
    ("80", [80], [79, 81]),
    ("80-85", [80, 83, 85], [79, 86]),
    ("80;443;", [80, 443], [81, 442]),
    ("80,443", [80, 443], [81]),
    ("80-85;443;8000-8080", [80, 85, 443, 8000, 8080], [86, 442, 7999, 8081]),
    (" 53 ; 5353-5360 ", [53, 5353, 5360], [5361]),
    ("0-65535", [0, 65535], []),
])
def test_port_sets(text, inside, outside):
    ports = parse_ports("localPort", text)
    assert all(p in ports for p in inside)
    assert not any(p in ports for p in outside)


@pytest.mark.parametrize("text, inside, outside", [
    ("10.0.0.4", ["10.0.0.4"], ["10.0.0.5"]),
    ("127.0.0.1-127.0.0.255", ["127.0.0.1", "127.0.0.255"], ["127.0.0.0", "127.0.1.0"]),
    ("127.0.0.1;127.0.0.5;", ["127.0.0.1", "127.0.0.5"], ["127.0.0.2"]),
    ("10.0.0.1,10.0.1.0/24", ["10.0.0.1", "10.0.1.77"], ["10.0.2.0"]),
    ("10.0.0.1-10.0.0.3;192.168.0.0-192.168.0.9;172.16.0.1", ["10.0.0.2", "192.168.0.9", "172.16.0.1"],
     ["10.0.0.4", "172.16.0.2"]),
    ("2001:db8::1-2001:db8::ff;fe80::1", ["2001:db8::80", "fe80::1"], ["2001:db8::100", "10.0.0.1"]),
])
def test_address_sets_single_range_list_and_mixed(text, inside, outside):
    addresses = parse_addresses("remoteIPAddress", text)
    assert all(ipaddress.ip_address(a) in addresses for a in inside)
    assert not any(ipaddress.ip_address(a) in addresses for a in outside)


@pytest.mark.parametrize("field, text, fragment", [
    ("localIPAddress", "1.1.1.1-255.255.255", "'255.255.255' is not an IPv4 or IPv6 address"),
    ("localIPAddress", "10.0.0.300", "'10.0.0.300' is not an IPv4 or IPv6 address"),
    ("localIPAddress", "10.0.0.9-10.0.0.1", "greater than range end"),
    ("localIPAddress", "10.0.0.1-2001:db8::1", "mixes IPv4 and IPv6"),
    ("localIPAddress", "10.0.0.1; host and port 22", "is not an IPv4 or IPv6 address"),
    ("localPort", "80-70", "range start 80 is greater than range end 70"),
    ("localPort", "70000", "port 70000 is above 65535"),
    ("localPort", "80;;443", "empty list element"),
    ("remotePort", "", "is empty"),
    ("remotePort", "80 or 1=1", "is not a port number"),
    ("remotePort", "-5", "is not a port number"),
])
def test_bad_values_name_the_field_and_the_value(field, text, fragment):
    source = PacketCaptureFilter.model_validate({"protocol": "Any", field: text})
    with pytest.raises(InvalidField) as error:
        parse_filters([PacketCaptureFilter(), source], "properties.filters")
    assert error.value.field == f"properties.filters[1].{field}"
    assert error.value.value == text
    assert fragment in str(error.value)
    assert repr(text) in str(error.value)
