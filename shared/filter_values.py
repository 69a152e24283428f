"""Typed values of a packet-capture filter field: address sets and port sets.

Grammar (ARM's, plus lists of ranges): an element is a single value, a range `a-b`
or (addresses only) a CIDR `net/len`; a list joins elements with `;` or `,` (the portal
writes `,`); one trailing separator is allowed, empty elements are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
import ipaddress
import re
from dataclasses import dataclass

from shared.errors import InvalidField

_SEPARATORS = re.compile(r"[;,]")
_PORT = re.compile(r"\d{1,5}")
MAX_ELEMENTS = 256

T = TypeVar("T")


def _elements(field: str, text: str) -> list[str]:
    if not isinstance(text, str):
        raise InvalidField(field, text, "must be a string")
    body = text.strip()
    if body.endswith((";", ",")):
        body = body[:-1]
    if not body:
        raise InvalidField(field, text, "is empty")
    parts = [part.strip() for part in _SEPARATORS.split(body)]
    if any(not part for part in parts):
        raise InvalidField(field, text, "has an empty list element")
    if len(parts) > MAX_ELEMENTS:
        raise InvalidField(field, text, f"has more than {MAX_ELEMENTS} list elements")
    return parts


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass(frozen=True)
class PortSet:
    """Inclusive port ranges, sorted and merged."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges)


@dataclass(frozen=True)
class AddressSet:
    """Inclusive address ranges per IP version, as integers, sorted and merged."""

    v4: tuple[tuple[int, int], ...] = ()
    v6: tuple[tuple[int, int], ...] = ()

    def __contains__(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        ranges = self.v4 if address.version == 4 else self.v6
        value = int(address)
        return any(lo <= value <= hi for lo, hi in ranges)

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The smallest list of CIDR blocks that covers exactly this set."""
        blocks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cls, ranges in ((ipaddress.IPv4Address, self.v4), (ipaddress.IPv6Address, self.v6)):
            for lo, hi in ranges:
                blocks.extend(ipaddress.summarize_address_range(cls(lo), cls(hi)))
        return blocks

    @classmethod
    def of(cls, addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> "AddressSet":
        v4 = [(int(a), int(a)) for a in addresses if a.version == 4]
        v6 = [(int(a), int(a)) for a in addresses if a.version == 6]
        return cls(_merge(v4), _merge(v6))


def _port(element: str) -> int:
    if not _PORT.fullmatch(element):
        hint = ""
        if re.fullmatch(r"\d{1,5}:\d{1,5}", element):
            hint = f" (did you mean {element.replace(':', '-')}? ranges are written a-b)"
        raise ValueError(f"{element!r} is not a port number{hint}")
    port = int(element)
    if port > 65535:
        raise ValueError(f"port {port} is above 65535")
    return port


def _port_range(element: str) -> tuple[int, int]:
    lo_text, dash, hi_text = element.partition("-")
    lo = _port(lo_text.strip())
    hi = _port(hi_text.strip()) if dash else lo
    if lo > hi:
        raise ValueError(f"range start {lo} is greater than range end {hi} (did you mean {hi}-{lo}?)")
    return lo, hi


def _each(field: str, text: str, parse: Callable[[str], T]) -> list[T]:
    """Every element of the list parsed; one InvalidField naming every bad element."""
    parsed, problems = [], []
    for element in _elements(field, text):
        try:
            parsed.append(parse(element))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidField(field, text, "; ".join(problems))
    return parsed


def parse_ports(field: str, text: str) -> PortSet:
    return PortSet(_merge(_each(field, text, _port_range)))


_DOTTED = re.compile(r"\d+(\.\d+)*")


def _address(element: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(element)
    except ValueError:
        pass
    reason = f"{element!r} is not an IPv4 or IPv6 address"
    if _DOTTED.fullmatch(element):
        parts = element.split(".")
        if len(parts) != 4:
            reason += f": it has {len(parts)} part{'s' if len(parts) != 1 else ''}, an IPv4 address has 4 (e.g. 10.0.0.4)"
        elif any(int(part) > 255 for part in parts):
            reason += f": {next(p for p in parts if int(p) > 255)} is above 255"
        elif any(len(part) > 1 and part.startswith("0") for part in parts):
            reason += f": leading zeros are ambiguous (did you mean {'.'.join(str(int(p)) for p in parts)}?)"
    raise ValueError(reason) from None


def _address_range(element: str) -> tuple[int, int, int]:
    """(low, high, IP version) of one element: an address, a range or a CIDR block."""
    if "/" in element:
        try:
            net = ipaddress.ip_network(element, strict=True)
        except ValueError as exc:
            hint = ""
            try:
                hint = f" (did you mean {ipaddress.ip_network(element, strict=False)}?)"
            except ValueError:
                pass
            raise ValueError(f"{element!r} is not a network: {exc}{hint}") from None
        return int(net.network_address), int(net.broadcast_address), net.version
    lo_text, dash, hi_text = element.partition("-")
    start = _address(lo_text.strip())
    end = _address(hi_text.strip()) if dash else start
    if start.version != end.version:
        raise ValueError(f"range {element!r} mixes IPv4 and IPv6")
    if int(start) > int(end):
        raise ValueError(f"range start {start} is greater than range end {end} (did you mean {end}-{start}?)")
    return int(start), int(end), start.version


def parse_addresses(field: str, text: str) -> AddressSet:
    ranges = _each(field, text, _address_range)
    v4 = [(lo, hi) for lo, hi, version in ranges if version == 4]
    v6 = [(lo, hi) for lo, hi, version in ranges if version == 6]
    return AddressSet(_merge(v4), _merge(v6))
