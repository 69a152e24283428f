"""ctypes bindings to the system libpcap: just the calls PacketWatch uses.

libpcap is where the BPF compiler and the kernel capture ring live; binding it directly
keeps the per-packet path in C (pcap_dispatch feeding pcap_dump) with no Python per packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

PCAP_ERRBUF_SIZE = 256
DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF


class LibpcapMissing(RuntimeError):
    """libpcap is not installed on this machine."""


class BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class BpfProgramStruct(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(BpfInsn))]


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class PcapPkthdr(ctypes.Structure):
    _fields_ = [("ts", Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class PcapStat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


class SockAddr(ctypes.Structure):
    _fields_ = [("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_ubyte * 26)]


class PcapAddr(ctypes.Structure):
    pass


PcapAddr._fields_ = [
    ("next", ctypes.POINTER(PcapAddr)), ("addr", ctypes.POINTER(SockAddr)),
    ("netmask", ctypes.c_void_p), ("broadaddr", ctypes.c_void_p), ("dstaddr", ctypes.c_void_p),
]


class PcapIf(ctypes.Structure):
    pass


PcapIf._fields_ = [
    ("next", ctypes.POINTER(PcapIf)), ("name", ctypes.c_char_p), ("description", ctypes.c_char_p),
    ("addresses", ctypes.POINTER(PcapAddr)), ("flags", ctypes.c_uint),
]

PcapHandler = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.POINTER(PcapPkthdr), ctypes.POINTER(ctypes.c_ubyte)
)

_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "pcap_open_dead": (ctypes.c_void_p, [ctypes.c_int, ctypes.c_int]),
    "pcap_findalldevs": (ctypes.c_int, [ctypes.POINTER(ctypes.POINTER(PcapIf)), ctypes.c_char_p]),
    "pcap_freealldevs": (None, [ctypes.POINTER(PcapIf)]),
    "pcap_create": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]),
    "pcap_set_snaplen": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_promisc": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_timeout": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_buffer_size": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_activate": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_compile": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.POINTER(BpfProgramStruct), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32],
    ),
    "pcap_freecode": (None, [ctypes.POINTER(BpfProgramStruct)]),
    "pcap_setfilter": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(BpfProgramStruct)]),
    "pcap_setnonblock": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]),
    "pcap_get_selectable_fd": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_dispatch": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "pcap_dump_fopen": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
    "pcap_datalink": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_dump_flush": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_dump_ftell": (ctypes.c_long, [ctypes.c_void_p]),
    "pcap_dump_close": (None, [ctypes.c_void_p]),
    "pcap_dump": (None, [ctypes.c_void_p, ctypes.POINTER(PcapPkthdr), ctypes.c_void_p]),
    "pcap_stats": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(PcapStat)]),
    "pcap_geterr": (ctypes.c_char_p, [ctypes.c_void_p]),
    "pcap_statustostr": (ctypes.c_char_p, [ctypes.c_int]),
    "pcap_close": (None, [ctypes.c_void_p]),
    "pcap_offline_filter": (
        ctypes.c_int,
        [ctypes.POINTER(BpfProgramStruct), ctypes.POINTER(PcapPkthdr), ctypes.c_char_p],
    ),
}


@lru_cache(maxsize=1)
def lib() -> ctypes.CDLL:
    """The loaded libpcap with argument and result types set."""
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        handle = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise LibpcapMissing(f"libpcap could not be loaded ({name}): install libpcap0.8") from exc
    for func_name, (restype, argtypes) in _SIGNATURES.items():
        func = getattr(handle, func_name)
        func.restype = restype
        func.argtypes = argtypes
    return handle


def dump_callback() -> ctypes.c_void_p:
    """The address of libpcap's own pcap_dump, usable as a pcap_dispatch callback."""
    return ctypes.cast(lib().pcap_dump, ctypes.c_void_p)
