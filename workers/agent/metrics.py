"""An agent's Prometheus metrics (served with its probes, see shared/probes.py): what it
captured, how its captures ended, what it uploaded; and the line logged when one ends."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram

from shared.arm import CaptureSummary, PcStatus
from shared.messages import StatusEvent

AGENT = Gauge("packetwatch_agent_info", "This agent (always 1): its VM, interface and version",
              ["vm", "interface", "version"])
STARTED = Counter("packetwatch_agent_captures_started_total", "Captures this agent started")
ENDED = Counter("packetwatch_agent_captures_ended_total", "Captures this agent ended, by status and reason "
                "(a stop reason, or the error)", ["status", "reason"])
RUNNING = Gauge("packetwatch_agent_captures_running", "Captures running on this agent now")
PACKETS = Counter("packetwatch_agent_packets_captured_total", "Packets written to capture files")
BYTES = Counter("packetwatch_agent_captured_bytes_total", "Bytes of capture files written")
DROPS = Counter("packetwatch_agent_kernel_drops_total", "Packets the kernel dropped before the agent read them")
UPLOADS = Counter("packetwatch_agent_uploads_total", "Uploads of capture files, by result (stored, failed)",
                  ["result"])
UPLOADED_BYTES = Counter("packetwatch_agent_uploaded_bytes_total", "Bytes of capture files stored in Blob Storage")
UPLOAD_SECONDS = Histogram("packetwatch_agent_upload_duration_seconds", "Time to store one capture file, retries "
                           "included", buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))


def record_end(event: StatusEvent, log: logging.Logger) -> None:
    """One line and the metrics for each capture that ends, however it ends."""
    reason = event.stop_reason or ",".join(error.value for error in event.errors)
    summary = event.summary or CaptureSummary()
    ENDED.labels(event.status.value, reason).inc()
    PACKETS.inc(summary.packets or 0)
    BYTES.inc(summary.bytes or 0)
    DROPS.inc(summary.kernel_drops or 0)
    where = {"capture_id": event.capture_id, "run_id": event.run_id}
    figures = f"{summary.packets or 0} packets, {summary.bytes or 0} bytes, {summary.kernel_drops or 0} dropped"
    if event.status is PcStatus.STOPPED:
        log.info("capture %s stopped (%s): %s", event.capture_id, reason, figures, extra=where)
    else:
        log.error("capture %s failed (%s): %s; %s", event.capture_id, reason, event.error_message, figures,
                  extra=where)
