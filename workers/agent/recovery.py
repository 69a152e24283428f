"""After a crash: the captures this agent was running when it died. Their files are made
readable (a torn last record cut), they are reported Error/AgentStopped, and they never run
again. The file a continuous capture was writing is announced as closed first, so it is
listed (and uploaded) like the ring's other files."""

from __future__ import annotations

from pathlib import Path

from shared.arm import CaptureSummary, PcError, PcStatus
from shared.messages import StatusEvent
from workers.agent.journal import Journal
from workers.agent.reports import Reports, now
from workers.capture.pcap_format import repair_pcap


def recover(journal: Journal, reports: Reports) -> None:
    for entry in journal.unfinished():
        message = "the agent stopped during this capture"
        summary = None
        if entry.path and Path(entry.path).exists():
            path = Path(entry.path)
            packets = repair_pcap(path)
            size = path.stat().st_size
            summary = CaptureSummary(packets=packets, bytes=size, file_paths=[str(path)])
            message += f"; {path} holds the {packets} packets captured until then"
            if entry.file_index is not None:
                reports.file_closed(entry.capture_id, entry.run_id, entry.file_index, path, packets, size)
        reports.status(StatusEvent(capture_id=entry.capture_id, run_id=entry.run_id, status=PcStatus.ERROR,
                                   reported_at=now(), errors=[PcError.AGENT_STOPPED], error_message=message,
                                   summary=summary))
        journal.finish(entry.run_id)
