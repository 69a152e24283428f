"""The agent's look-back: opening its standing ring, and beginning a capture's file with
the ring's packets from before the capture was asked for (workers/capture/hand_over.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from shared.arm import LookBackSummary, PacketCaptureFilter
from shared.bpf import BpfProgram, compile_filters
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from shared.messages import CaptureRequest
from workers.capture.hand_over import hand_over
from workers.capture.interfaces import PacketSource, RecordSink
from workers.capture.live_source import LiveCapture, interface_addresses
from workers.capture.look_back import LookBackRing, LookBackSettings

KERNEL_BUFFER_BYTES = 16 * 1024 * 1024
OFF = "look-back is off on this agent (agent run --look-back-seconds); the capture holds live packets only"


def open_ring(settings: LookBackSettings, filters: tuple[PacketCaptureFilter, ...], interface: str,
              netns: str | None) -> LookBackRing:
    """The ring on its own live source: the agent's broad filter, compiled as a capture's is."""
    specs = parse_filters(list(filters), "--look-back-filters")
    addresses = AddressSet.of(interface_addresses(interface, netns))
    source = LiveCapture(interface, compile_filters(specs, addresses, settings.snaplen), settings.snaplen, netns,
                         buffer_bytes=KERNEL_BUFFER_BYTES)
    return LookBackRing(settings, source)


def begin_with_look_back(ring: LookBackRing | None, request: CaptureRequest, source: PacketSource,
                         program: BpfProgram, sink: RecordSink, opened_at: float) -> LookBackSummary | None:
    """Write the look-back packets from `lookBackSeconds` before the capture was asked for
    into `sink`, handed over to the live `source` (opened at `opened_at`) without a gap or
    a double; what it gave, for the capture's summary (None if it asked for none)."""
    seconds = request.parameters.look_back_seconds
    if not seconds:
        return None
    if ring is None:
        return LookBackSummary(requested_seconds=seconds, note=OFF)
    since = min(request.requested_at.timestamp(), opened_at) - seconds
    given = hand_over(ring, source, program, since, opened_at)
    sink.take_records(given.records)
    note = None
    if seconds > ring.settings.seconds:
        note = f"this agent's look-back ring reaches back {ring.settings.seconds} s, not {seconds} s"
    elif ring.dropped_files and (given.earliest is None or given.earliest > since + 1):
        note = (f"the look-back ring's spool bound ({ring.settings.spool_bytes} bytes) held less than {seconds} s "
                "of traffic")
    earliest = datetime.fromtimestamp(given.earliest, timezone.utc) if given.earliest is not None else None
    return LookBackSummary(requested_seconds=seconds, packets=given.look_back_packets, earliest=earliest, note=note)
