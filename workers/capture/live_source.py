"""How packets are read: a libpcap live handle on one interface with a kernel BPF filter.

The kernel runs the filter and fills a TPACKET_V3 ring; pcap_dispatch drains it. Where
the packets go is the sink's business (pcap_sink.py). A PacketSource (interfaces.py).
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import select

from shared import libpcap
from shared.bpf import MAX_SNAPLEN, BpfProgram
from workers.capture.interfaces import KernelCounters
from workers.capture.netns import inside
from workers.capture.failures import CaptureStartFailure

RING_BYTES = 64 * 1024 * 1024
READ_TIMEOUT_MS = 100
# The kernel hands packets up a block at a time: a block is readable once full or
# READ_TIMEOUT_MS after it began, so a packet it has taken is readable within this.
READABLE_WITHIN_SECONDS = 2 * READ_TIMEOUT_MS / 1000 + 0.05


class CaptureOpenError(CaptureStartFailure):
    def __init__(self, interface: str, reason: str) -> None:
        self.interface = interface
        self.reason = reason
        super().__init__(f"cannot capture on {interface!r}: {reason}")


def _sockaddr_ip(sa: libpcap.SockAddr) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    data = bytes(sa.sa_data)
    if sa.sa_family == socket.AF_INET:
        return ipaddress.IPv4Address(data[2:6])
    if sa.sa_family == socket.AF_INET6:
        return ipaddress.IPv6Address(data[6:22])
    return None


def interface_state(interface: str, netns: str | None = None) -> str:
    """"ok" when `interface` exists (in `netns`), else why not, for readiness probes."""
    try:
        with inside(netns):
            socket.if_nametoindex(interface)
        return "ok"
    except OSError as exc:
        return f"down: interface {interface!r} {'in ' + netns + ' ' if netns else ''}not found ({exc.strerror or exc})"


def interface_addresses(interface: str, netns: str | None = None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The IPv4 and IPv6 addresses of `interface` (in `netns`), as libpcap lists them."""
    pcap = libpcap.lib()
    devices = ctypes.POINTER(libpcap.PcapIf)()
    errbuf = ctypes.create_string_buffer(libpcap.PCAP_ERRBUF_SIZE)
    with inside(netns):
        if pcap.pcap_findalldevs(ctypes.byref(devices), errbuf) != 0:
            raise CaptureOpenError(interface, errbuf.value.decode(errors="replace"))
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    try:
        node = devices
        while node:
            if node.contents.name.decode() == interface:
                addr = node.contents.addresses
                while addr:
                    if addr.contents.addr:
                        ip = _sockaddr_ip(addr.contents.addr.contents)
                        if ip is not None:
                            found.append(ip)
                    addr = addr.contents.next
            node = node.contents.next
    finally:
        if devices:
            pcap.pcap_freealldevs(devices)
    return found


class LiveCapture:
    """An activated libpcap handle, filtered in the kernel, non-blocking."""

    def __init__(self, interface: str, program: BpfProgram, snaplen: int, netns: str | None = None,
                 buffer_bytes: int = RING_BYTES) -> None:
        self.interface = interface
        self.snaplen = snaplen or MAX_SNAPLEN
        pcap = libpcap.lib()
        errbuf = ctypes.create_string_buffer(libpcap.PCAP_ERRBUF_SIZE)
        with inside(netns):
            handle = pcap.pcap_create(interface.encode(), errbuf)
            if not handle:
                raise CaptureOpenError(interface, errbuf.value.decode(errors="replace"))
            self.handle = handle
            pcap.pcap_set_snaplen(handle, self.snaplen)
            pcap.pcap_set_promisc(handle, 0)
            pcap.pcap_set_timeout(handle, READ_TIMEOUT_MS)
            pcap.pcap_set_buffer_size(handle, buffer_bytes)
            status = pcap.pcap_activate(handle)
        if status < 0:
            reason = self._error() if status == -1 else pcap.pcap_statustostr(status).decode()
            self.close()
            raise CaptureOpenError(interface, reason)
        struct, keep = program.as_struct()
        if pcap.pcap_setfilter(handle, ctypes.byref(struct)) != 0:
            reason = self._error()
            self.close()
            raise CaptureOpenError(interface, f"filter rejected: {reason}")
        del keep
        if pcap.pcap_setnonblock(handle, 1, errbuf) != 0:
            self.close()
            raise CaptureOpenError(interface, errbuf.value.decode(errors="replace"))
        self.fd = pcap.pcap_get_selectable_fd(handle)
        self.linktype = pcap.pcap_datalink(handle)

    def _error(self) -> str:
        return (libpcap.lib().pcap_geterr(self.handle) or b"").decode(errors="replace")

    def wait(self, seconds: float) -> None:
        select.select([self.fd], [], [], seconds)

    def dispatch(self, count: int, callback: ctypes._CData, user: ctypes.c_void_p | None) -> int:
        """Hand up to `count` ready packets (-1: all ready) to a C callback; returns how many."""
        done = libpcap.lib().pcap_dispatch(self.handle, count, ctypes.cast(callback, ctypes.c_void_p), user)
        if done < 0:
            raise CaptureOpenError(self.interface, self._error())
        return done

    def counters(self) -> KernelCounters:
        stat = libpcap.PcapStat()
        if libpcap.lib().pcap_stats(self.handle, ctypes.byref(stat)) != 0:
            return KernelCounters(0, 0, 0)
        return KernelCounters(stat.ps_recv, stat.ps_drop, stat.ps_ifdrop)

    def close(self) -> None:
        if getattr(self, "handle", None):
            libpcap.lib().pcap_close(self.handle)
            self.handle = None
