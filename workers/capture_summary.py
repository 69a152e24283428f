"""The figures an agent reports for a finished session, read from the files as they are on
disk (what is reported is what they hold): one file, or the files of a continuous ring."""

from __future__ import annotations

from shared.arm import CaptureSummary
from workers.capture.pcap_stats import FileStatistics, read_statistics
from workers.capture.ring_sink import RingSink
from workers.capture.session import SessionOutcome


def _duration(outcome: SessionOutcome) -> float:
    return round((outcome.ended - outcome.started).total_seconds(), 3)


def file_summary(outcome: SessionOutcome) -> CaptureSummary:
    if not outcome.file_bytes:
        return CaptureSummary(kernel_drops=outcome.kernel_drops, duration_seconds=_duration(outcome))
    stats = read_statistics(outcome.path)
    return CaptureSummary(packets=outcome.packets, bytes=outcome.file_bytes, kernel_drops=outcome.kernel_drops,
                          file_paths=[str(outcome.path)], sha256=stats.sha256, duration_seconds=_duration(outcome),
                          protocols=dict(stats.protocols), top_talkers=stats.top_talkers())


def ring_summary(outcome: SessionOutcome, ring: RingSink) -> CaptureSummary:
    """Packets and bytes of every file written; the files the ring still holds on the VM, and
    their protocols and talkers (each file is listed in packetWatchFiles as it closes)."""
    merged = FileStatistics()
    kept = [path for path in ring.kept if path.exists()]  # files uploaded from the spool are gone
    for path in kept:
        stats = read_statistics(path)
        merged.protocols.update(stats.protocols)
        merged.talkers.update(stats.talkers)
        merged.talker_packets.update(stats.talker_packets)
    return CaptureSummary(packets=ring.packets, bytes=ring.file_bytes, kernel_drops=outcome.kernel_drops,
                          file_paths=[str(path) for path in kept], duration_seconds=_duration(outcome),
                          protocols=dict(merged.protocols), top_talkers=merged.top_talkers())
