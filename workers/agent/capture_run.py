"""One capture request run to its end on this agent: the filters compiled for this VM's
addresses, the sink its mode asks for (one file within its byte budget, or a ring of files:
decided once, from the request), the look-back ring's packets first when asked for, the
session until a limit or a stop, then the end reported (its upload first) and what the files
hold."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path

from shared.arm import CaptureSummary, PcError, PcStatus
from shared.bpf import compile_filters
from shared.capture_modes import RingSettings, ring_file_name
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from shared.messages import CaptureRequest, UploadRequest
from workers.agent import metrics
from workers.agent.config import AgentConfig
from workers.agent.journal import Journal
from workers.agent.look_back import begin_with_look_back
from workers.agent.reports import Reports, event
from workers.agent.summary import file_summary, hold_files, ring_summary, statistics_of
from workers.capture.live_source import LiveCapture, interface_addresses
from workers.capture.look_back import LookBackRing
from workers.capture.pcap_sink import CaptureWriteError, PcapFileSink
from workers.capture.ring_sink import ClosedFile, RingLayout, RingSink
from workers.capture.session import SessionLimits, SessionOutcome, StopSignal, run_session

log = logging.getLogger("packetwatch.agent")
Sink = PcapFileSink | RingSink
SummaryOf = Callable[[SessionOutcome], CaptureSummary]  # what the sink's file or files held


class CaptureRun:
    def __init__(self, config: AgentConfig, request: CaptureRequest, stop: StopSignal, reports: Reports,
                 journal: Journal, look_back: LookBackRing | None, file_news: ThreadPoolExecutor,
                 on_sink: Callable[[Sink], None], own_queue: str) -> None:
        self.config = config
        self.request = request
        self.stop = stop
        self.reports = reports
        self.journal = journal
        self.look_back = look_back
        self.file_news = file_news  # where a ring's closed files are announced (never the capture thread)
        self.on_sink = on_sink  # the sink, once open: the heartbeat reports its progress
        self.ring = RingSettings.of(request.parameters)  # the capture's mode, decided once
        self.own_queue = own_queue  # where the upload request goes (an upload survives a restart)

    def run(self) -> None:
        """Capture until the session ends; raises what kept it from starting or writing."""
        request, params = self.request, self.request.parameters
        specs = parse_filters(params.filters, "properties.filters")
        vm_addresses = AddressSet.of(interface_addresses(self.config.interface, self.config.netns))
        program = compile_filters(specs, vm_addresses, params.bytes_to_capture_per_packet)
        limits = SessionLimits.of(params)
        opened_at = time.time()
        source = LiveCapture(self.config.interface, program, limits.snaplen, self.config.netns)
        try:
            sink, summary_of = self._open_sink(source, limits)
        except BaseException:
            source.close()
            raise
        try:
            look_back = begin_with_look_back(self.look_back, request, source, program, sink, opened_at)
        except BaseException:
            sink.close()
            source.close()
            raise
        self.on_sink(sink)
        outcome = run_session(source, sink, limits, self.stop, partial(self._running, limits))
        summary = summary_of(outcome)
        summary.look_back = look_back
        with ExitStack() as held:
            files = hold_files(summary, held)
            self._report_end(outcome, summary)
            # The end is reported; what the files hold follows (the control worker adds it).
            statistics = statistics_of(request.capture_id, request.run_id, files, one_file=self.ring is None)
        self.reports.send_until_sent(statistics)

    def _running(self, limits: SessionLimits, started: datetime) -> None:
        request, params, ring = self.request, self.request.parameters, self.ring
        metrics.STARTED.inc()
        filters = [f.model_dump(by_alias=True, exclude_none=True) for f in params.filters] or "none"
        mode = (f"{'rolling ' if ring.rolling else ''}ring of {ring.file_count} files of {ring.file_bytes} bytes"
                if ring else f"{params.bytes_limit} bytes")
        log.info("capture %s run %s started on %s: filters %s; limits %d bytes per packet, %s, %d s",
                 request.capture_id, request.run_id, self.config.interface, filters,
                 params.bytes_to_capture_per_packet, mode, limits.seconds,
                 extra={"capture_id": request.capture_id, "run_id": request.run_id})
        self.reports.status(event(request, PcStatus.RUNNING, capture_start_time=started))

    def _report_end(self, outcome: SessionOutcome, summary: CaptureSummary) -> None:
        """Stopped (its upload sent first, so it survives a crash of this agent), or Error when
        the file could not be written. A ring's files are uploaded one by one as they close."""
        request = self.request
        if outcome.write_error is not None:
            kept = f"{outcome.path} holds the {outcome.packets} packets written until then" if outcome.file_bytes \
                else "no file was kept"
            self.reports.status(event(request, PcStatus.ERROR, capture_start_time=outcome.started,
                                      errors=[PcError.LOCAL_FILE_FAILED], summary=summary,
                                      error_message=f"{outcome.write_error}; {kept}"))
            return
        if request.upload is not None and self.ring is None:
            self.reports.to_self(UploadRequest(
                capture_id=request.capture_id, run_id=request.run_id, upload=request.upload,
                local_path=str(outcome.path), keep_local=bool(request.parameters.storage_location.file_path)),
                self.own_queue)
        reason = outcome.stop_reason.value if outcome.stop_reason else None
        self.reports.status(event(request, PcStatus.STOPPED, capture_start_time=outcome.started,
                                  stop_reason=reason, summary=summary))

    def _open_sink(self, source: LiveCapture, limits: SessionLimits) -> tuple[Sink, SummaryOf]:
        """The capture's new file, its header written, and its path in the journal (for repair
        after a crash); if any of that fails, no file is left behind. A continuous capture
        gets a ring of files, each journaled as it opens. Returned with how its outcome is
        summed up (one file's, or the ring's)."""
        request, ring = self.request, self.ring
        if ring is not None:
            layout = RingLayout(self.config.capture_dir, partial(ring_file_name, request.relative_file_path),
                                ring.file_bytes, ring.file_count, ring.rolling)
            files = RingSink(layout, source.linktype, source.snaplen, on_opened=self._journal_path,
                             on_closed=lambda closed: self.file_news.submit(self._file_closed, closed))
            return files, partial(ring_summary, ring=files)
        sink = PcapFileSink.create(self.config.capture_dir, request.relative_file_path, source.linktype,
                                   source.snaplen, limits.byte_limit)
        try:
            self._journal_path(sink.path)
        except CaptureWriteError:
            sink.close()
            sink.path.unlink(missing_ok=True)
            raise
        return sink, file_summary

    def _file_closed(self, closed: ClosedFile) -> None:
        self.reports.file_closed(self.request.capture_id, self.request.run_id, closed.index, closed.path,
                                 closed.packets, closed.bytes)

    def _journal_path(self, path: Path, file_index: int | None = None) -> None:
        try:
            self.journal.set_path(self.request.run_id, self.request.capture_id, path, file_index)
        except OSError as exc:
            raise CaptureWriteError(path, exc) from None
