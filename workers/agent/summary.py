"""The figures an agent reports for a finished session. Its end is reported with what the
session counted as it wrote (packets, bytes, drops, files), as soon as the file is closed;
what the files hold (protocols, top talkers, the SHA-256 of a one-file capture) is read from
them as they are on disk afterwards, from files held open so that an upload which removes
them cannot race the reading."""

from __future__ import annotations

from contextlib import ExitStack

from shared.arm import CaptureSummary
from shared.messages import CaptureStatistics
from workers.capture.pcap_stats import FileStatistics, ReadableFile, read_statistics
from workers.capture.ring_sink import RingSink
from workers.capture.session import SessionOutcome


def _duration(outcome: SessionOutcome) -> float:
    return round((outcome.ended - outcome.started).total_seconds(), 3)


def file_summary(outcome: SessionOutcome) -> CaptureSummary:
    if not outcome.file_bytes:
        return CaptureSummary(kernel_drops=outcome.kernel_drops, duration_seconds=_duration(outcome))
    return CaptureSummary(packets=outcome.packets, bytes=outcome.file_bytes, kernel_drops=outcome.kernel_drops,
                          file_paths=[str(outcome.path)], duration_seconds=_duration(outcome))


def ring_summary(outcome: SessionOutcome, ring: RingSink) -> CaptureSummary:
    """Packets and bytes of every file written, and the files the ring still holds on the VM
    (each file is listed in packetWatchFiles as it closes)."""
    return CaptureSummary(packets=ring.packets, bytes=ring.file_bytes, kernel_drops=outcome.kernel_drops,
                          file_paths=[str(path) for path in ring.kept if path.exists()],
                          duration_seconds=_duration(outcome))


def hold_files(summary: CaptureSummary, stack: ExitStack) -> list[ReadableFile]:
    """The summary's files, opened (until `stack` closes) for the statistics read later; a
    file already gone is left out."""
    held: list[ReadableFile] = []
    for path in summary.file_paths:
        try:
            held.append(stack.enter_context(open(path, "rb", buffering=0)))
        except FileNotFoundError:
            continue
    return held


def statistics_of(capture_id: str, run_id: str, files: list[ReadableFile], one_file: bool) -> CaptureStatistics:
    """What the files hold together; the SHA-256 when they are a one-file capture's file."""
    merged = FileStatistics()
    for handle in files:
        stats = read_statistics(handle)
        merged.protocols.update(stats.protocols)
        merged.talkers.update(stats.talkers)
        merged.talker_packets.update(stats.talker_packets)
        merged.sha256 = stats.sha256
    return CaptureStatistics(capture_id=capture_id, run_id=run_id, sha256=(merged.sha256 or None) if one_file else None,
                             protocols=dict(merged.protocols), top_talkers=merged.top_talkers())
