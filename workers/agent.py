"""The capture agent: a Celery worker that consumes only its own VM's queue.

Start and stop tasks are short: a capture runs on a thread of its own, so a stop request
is taken while captures run. A journal on disk remembers which captures were started, so
a redelivered request never runs a capture twice.
"""

from __future__ import annotations

import hashlib
import logging
import signal as os_signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from celery import Celery
from celery.signals import worker_shutting_down

from shared.arm import CaptureSummary, PacketCaptureFilter, PcError, PcStatus, StopReason
from shared.bpf import compile_filters
from shared.broker import CONTROL_QUEUE, agent_queue_name, durable_queue, make_celery, publish, run_worker
from shared.capture_modes import RingSettings, ring_file_name
from shared.errors import InvalidField
from shared.filter_values import AddressSet
from shared.filters import parse_filters
from shared.messages import (
    CaptureRequest, FileClosed, Heartbeat, RunProgress, StatusEvent, StopRequest, TaskName, UploadRequest,
)
from shared.probes import broker_state, serve_probes
from shared.resource_ids import VirtualMachineId
from shared.retry import backoff
from shared.version import VERSION
from workers import agent_metrics as metrics
from workers.capture.live_source import CaptureOpenError, LiveCapture, interface_addresses, interface_state
from workers.agent_look_back import begin_with_look_back, open_ring
from workers.capture.look_back import LookBackRing, LookBackSettings
from workers.capture.pcap_format import repair_pcap
from workers.capture.pcap_sink import CaptureWriteError, PcapFileSink
from workers.capture.ring_sink import ClosedFile, RingLayout, RingSink
from workers.capture.session import SessionLimits, SessionOutcome, StopSignal, run_session
from workers.capture_summary import file_summary, hold_files, ring_summary, statistics_of
from workers.journal import Journal, JournalEntry
from workers.local_paths import CapturePathRefused
from workers.agent_uploads import store_file

log = logging.getLogger("packetwatch.agent")
MAX_CONCURRENT_CAPTURES = 16
SHUTDOWN_GRACE_SECONDS = 20.0
REPORT_RETRY_SECONDS = 600.0


@dataclass(frozen=True)
class AgentConfig:
    vm: VirtualMachineId
    interface: str
    netns: str | None
    capture_dir: Path
    broker_url: str
    heartbeat_seconds: float = 10.0
    probes: tuple[str, int] = ("127.0.0.1", 0)  # where /metrics, /healthz and /readyz are served; port 0: nowhere
    location: str | None = None  # the VM's Azure region (its network watcher is that region's)
    look_back: LookBackSettings | None = None  # the standing ring; off by default
    look_back_filters: tuple[PacketCaptureFilter, ...] = ()  # what it keeps (ARM filters; none: everything)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _event(request: CaptureRequest, status: PcStatus, **fields: object) -> StatusEvent:
    return StatusEvent(capture_id=request.capture_id, run_id=request.run_id, status=status, reported_at=_now(),
                       **fields)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.queue = agent_queue_name(config.vm)
        self.app = make_celery("packetwatch-agent", config.broker_url)
        self.app.conf.task_queues = [durable_queue(self.queue)]
        # Local state belongs to this VM identity: agents for other VMs on the same host
        # (one capture root) never read, recover or finish each other's captures.
        self.journal = Journal(config.capture_dir / ".agent" / self.queue / "journal")
        self.lock = threading.Lock()
        self.running: dict[str, tuple[StopSignal, threading.Thread]] = {}
        self.sinks: dict[str, PcapFileSink | RingSink] = {}  # by run: what each running capture has written
        self.stopped_early: set[str] = set()
        self.closing = threading.Event()
        # A continuous capture's closed files are announced from here, never from its capture
        # thread (which must not wait on the broker).
        self.file_news = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-news")
        self.look_back: LookBackRing | None = None
        self.look_back_state = "ok"
        self._register_tasks(self.app)
        metrics.AGENT.labels(config.vm.arm_id, config.interface, VERSION).set(1)
        metrics.RUNNING.set_function(lambda: len(self.running))

    # -- messages out -------------------------------------------------------------------
    def _publish_until_sent(self, task: TaskName, payload: dict, queue: str) -> None:
        """News about a capture must not be lost while the broker is away: retry with backoff
        for up to REPORT_RETRY_SECONDS until the broker takes (and confirms) it."""
        backoff(first=0.5, maximum=10.0, within=REPORT_RETRY_SECONDS, log=log,
                what=f"{task.value} for {payload.get('capture_id')}")(publish, self.app, task.value, payload, queue)

    def report(self, event: StatusEvent) -> None:
        if event.status in (PcStatus.STOPPED, PcStatus.ERROR):
            metrics.record_end(event, log)
        self._publish_until_sent(TaskName.STATUS, event.model_dump(mode="json"), CONTROL_QUEUE)

    def heartbeat(self) -> None:
        with self.lock:
            running = sorted(self.running)
            progress = {run: RunProgress(packets=p, bytes=b) for run, (p, b) in
                        ((run, sink.progress()) for run, sink in self.sinks.items())}
        beat = Heartbeat(vm_id=self.config.vm.arm_id, version=VERSION, hostname=socket.gethostname(),
                         interface=self.config.interface, reported_at=_now(), running=running,
                         location=self.config.location, progress=progress)
        publish(self.app, TaskName.HEARTBEAT.value, beat.model_dump(mode="json"), CONTROL_QUEUE)

    def _heartbeat_loop(self) -> None:
        while not self.closing.wait(self.config.heartbeat_seconds):
            try:
                self.heartbeat()
            except Exception:  # the broker may be away; the next beat tries again
                log.warning("heartbeat not sent", exc_info=True)

    # -- tasks --------------------------------------------------------------------------
    def _register_tasks(self, app: Celery) -> None:
        @app.task(name=TaskName.CAPTURE.value)
        def capture(payload: dict) -> None:
            self.start_capture(CaptureRequest.model_validate(payload))

        @app.task(name=TaskName.STOP.value)
        def stop(payload: dict) -> None:
            self.stop_capture(StopRequest.model_validate(payload))

        @app.task(name=TaskName.UPLOAD.value)
        def upload(payload: dict) -> None:
            self.upload(UploadRequest.model_validate(payload))

    def start_capture(self, request: CaptureRequest) -> None:
        key = request.run_id
        if VirtualMachineId.parse(request.target) != self.config.vm:
            log.error("capture %s is for %s, not this VM; ignored", request.capture_id, request.target)
            return
        try:
            begun = self.journal.begin(key, request.capture_id)
        except OSError as exc:  # a full disk, say: the capture cannot be recorded, so it does not start
            self._fail(request, PcError.LOCAL_FILE_FAILED,
                       f"the agent cannot write its journal in {self.journal.folder}: {exc.strerror or exc}")
            return
        if not begun:
            return  # delivered again: it ran (or was recovered after a crash) already
        if request.start_by is not None and _now() > request.start_by:
            self.journal.finish(key)
            self._fail(request, PcError.AGENT_STOPPED, f"the request reached the agent at {_now().isoformat()}, "
                       f"after its start deadline {request.start_by.isoformat()}: not started")
            return
        with self.lock:
            if key in self.stopped_early:
                self.stopped_early.discard(key)
                self.journal.finish(key)
                self.report(_event(request, PcStatus.STOPPED, stop_reason=StopReason.MANUALLY_STOPPED.value))
                return
            if len(self.running) >= MAX_CONCURRENT_CAPTURES:
                self.journal.finish(key)
                self._fail(request, PcError.CAPTURE_FAILED,
                           f"this agent already runs {MAX_CONCURRENT_CAPTURES} captures")
                return
            signal = StopSignal()
            thread = threading.Thread(target=self._run, args=(key, request, signal), name=f"capture-{key[-40:]}",
                                      daemon=True)
            self.running[key] = (signal, thread)
        thread.start()

    def stop_capture(self, request: StopRequest) -> None:
        key = request.run_id
        with self.lock:
            entry = self.running.get(key)
            if entry is None:
                if not self.journal.finished(key):
                    self.stopped_early.add(key)
                return
        entry[0].set(StopReason.MANUALLY_STOPPED)

    def shutdown(self) -> None:
        """End every running capture cleanly (AgentShutdown) and wait for their reports."""
        self.closing.set()
        with self.lock:
            entries = list(self.running.values())
        for signal, _ in entries:
            signal.set(StopReason.AGENT_SHUTDOWN)
        for _, thread in entries:
            thread.join(SHUTDOWN_GRACE_SECONDS)

    # -- the capture thread -------------------------------------------------------------
    def _fail(self, request: CaptureRequest, error: PcError, message: str) -> None:
        self.report(_event(request, PcStatus.ERROR, errors=[error], error_message=message))

    def _run(self, key: str, request: CaptureRequest, signal: StopSignal) -> None:
        try:
            self._capture(request, signal)
        except (CapturePathRefused, CaptureWriteError, PermissionError) as exc:
            self._fail(request, PcError.LOCAL_FILE_FAILED, str(exc))
        except (CaptureOpenError, InvalidField) as exc:
            self._fail(request, PcError.CAPTURE_FAILED, str(exc))
        except Exception as exc:
            log.exception("capture %s failed", request.capture_id)
            self._fail(request, PcError.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            self.journal.finish(key)
            with self.lock:
                self.running.pop(key, None)
                self.sinks.pop(key, None)

    def _capture(self, request: CaptureRequest, signal: StopSignal) -> None:
        params = request.parameters
        specs = parse_filters(params.filters, "properties.filters")
        vm_addresses = AddressSet.of(interface_addresses(self.config.interface, self.config.netns))
        program = compile_filters(specs, vm_addresses, params.bytes_to_capture_per_packet)
        limits = SessionLimits.of(params)
        opened_at = time.time()
        source = LiveCapture(self.config.interface, program, limits.snaplen, self.config.netns)
        try:
            sink = self._open_sink(request, source, limits)
        except BaseException:
            source.close()
            raise
        try:
            look_back = begin_with_look_back(self.look_back, request, source, program, sink, opened_at)
        except BaseException:
            sink.close()
            source.close()
            raise

        def on_running(started: datetime) -> None:
            metrics.STARTED.inc()
            filters = [f.model_dump(by_alias=True, exclude_none=True) for f in params.filters] or "none"
            ring = RingSettings.of(params)
            mode = (f"{'rolling ' if ring.rolling else ''}ring of {ring.file_count} files of {ring.file_bytes} bytes"
                    if ring else f"{params.bytes_limit} bytes")
            log.info("capture %s run %s started on %s: filters %s; limits %d bytes per packet, %s, %d s",
                     request.capture_id, request.run_id, self.config.interface, filters,
                     params.bytes_to_capture_per_packet, mode, limits.seconds,
                     extra={"capture_id": request.capture_id, "run_id": request.run_id})
            self.report(_event(request, PcStatus.RUNNING, capture_start_time=started))

        with self.lock:
            self.sinks[request.run_id] = sink
        outcome = run_session(source, sink, limits, signal, on_running)
        ring = isinstance(sink, RingSink)
        summary = ring_summary(outcome, sink) if ring else file_summary(outcome)  # type: ignore[arg-type]
        summary.look_back = look_back
        with ExitStack() as held:
            files = hold_files(summary, held)
            self._report_end(request, outcome, summary, upload=request.upload is not None and not ring)
            # The end is reported; what the files hold follows (the control worker adds it).
            statistics = statistics_of(request.capture_id, request.run_id, files, one_file=not ring)
        self._publish_until_sent(TaskName.STATISTICS, statistics.model_dump(mode="json"), CONTROL_QUEUE)

    def _report_end(self, request: CaptureRequest, outcome: SessionOutcome, summary: CaptureSummary,
                    upload: bool) -> None:
        """Stopped (its upload sent first, so it survives a crash of this agent), or Error when
        the file could not be written."""
        if outcome.write_error is not None:
            kept = f"{outcome.path} holds the {outcome.packets} packets written until then" if outcome.file_bytes \
                else "no file was kept"
            self.report(_event(request, PcStatus.ERROR, capture_start_time=outcome.started,
                               errors=[PcError.LOCAL_FILE_FAILED], summary=summary,
                               error_message=f"{outcome.write_error}; {kept}"))
            return
        if upload:
            message = UploadRequest(capture_id=request.capture_id, run_id=request.run_id,
                                    upload=request.upload,
                                    local_path=str(outcome.path),
                                    keep_local=bool(request.parameters.storage_location.file_path))
            self._publish_until_sent(TaskName.UPLOAD, message.model_dump(mode="json"), self.queue)
        reason = outcome.stop_reason.value if outcome.stop_reason else None
        self.report(_event(request, PcStatus.STOPPED, capture_start_time=outcome.started, stop_reason=reason,
                           summary=summary))

    def _open_sink(self, request: CaptureRequest, source: LiveCapture,
                   limits: SessionLimits) -> PcapFileSink | RingSink:
        """The capture's new file, its header written, and its path in the journal (for repair
        after a crash); if any of that fails, no file is left behind. A continuous capture
        gets a ring of files, each journaled as it opens."""
        ring = RingSettings.of(request.parameters)
        if ring is not None:
            layout = RingLayout(self.config.capture_dir, partial(ring_file_name, request.relative_file_path),
                                ring.file_bytes, ring.file_count, ring.rolling)
            return RingSink(layout, source.linktype, source.snaplen, on_opened=partial(self._journal_path, request),
                            on_closed=lambda closed: self.file_news.submit(self._file_closed, request, closed))
        sink = PcapFileSink.create(self.config.capture_dir, request.relative_file_path, source.linktype,
                                   source.snaplen, limits.byte_limit)
        try:
            self._journal_path(request, sink.path)
        except CaptureWriteError:
            sink.close()
            sink.path.unlink(missing_ok=True)
            raise
        return sink

    def _file_closed(self, request: CaptureRequest, closed: ClosedFile) -> None:
        """Tell the control worker a file of a continuous capture is complete (it records it
        and, with a storage account, sends this agent the file's upload)."""
        try:
            with closed.path.open("rb") as data:
                sha256 = hashlib.file_digest(data, "sha256").hexdigest()
        except FileNotFoundError:
            sha256 = ""  # the ring removed it already (files smaller than the time it takes to hash them)
        event = FileClosed(capture_id=request.capture_id, run_id=request.run_id, index=closed.index,
                           local_path=str(closed.path), packets=closed.packets, bytes=closed.bytes, sha256=sha256,
                           closed_at=_now())
        self._publish_until_sent(TaskName.FILE_CLOSED, event.model_dump(mode="json"), CONTROL_QUEUE)

    def _journal_path(self, request: CaptureRequest, path: Path, file_index: int | None = None) -> None:
        try:
            self.journal.set_path(request.run_id, request.capture_id, path, file_index)
        except OSError as exc:
            raise CaptureWriteError(path, exc) from None

    # -- upload (a task of its own, so it survives an agent restart) ----------------------
    def upload(self, request: UploadRequest) -> None:
        result = store_file(request)
        self._publish_until_sent(TaskName.UPLOADED, result.model_dump(mode="json"), CONTROL_QUEUE)
        if result.storage_path and not request.keep_local:
            Path(request.local_path).unlink(missing_ok=True)

    # -- after a crash ------------------------------------------------------------------
    def recover(self) -> None:
        """Captures this agent was running when it died: make their files readable, report
        them as Error/AgentStopped, and never run them again. The file a continuous capture
        was writing is announced as closed first, so it is listed (and uploaded) like the
        ring's other files."""
        for entry in self.journal.unfinished():
            message = "the agent stopped during this capture"
            summary = None
            if entry.path and Path(entry.path).exists():
                path = Path(entry.path)
                packets = repair_pcap(path)
                size = path.stat().st_size
                summary = CaptureSummary(packets=packets, bytes=size, file_paths=[str(path)])
                message += f"; {path} holds the {packets} packets captured until then"
                if entry.file_index is not None:
                    self._file_closed_after_crash(entry, path, packets, size)
            self.report(StatusEvent(capture_id=entry.capture_id, run_id=entry.run_id, status=PcStatus.ERROR,
                                    reported_at=_now(), errors=[PcError.AGENT_STOPPED], error_message=message,
                                    summary=summary))
            self.journal.finish(entry.run_id)

    def _file_closed_after_crash(self, entry: JournalEntry, path: Path, packets: int, size: int) -> None:
        with path.open("rb") as data:
            sha256 = hashlib.file_digest(data, "sha256").hexdigest()
        event = FileClosed(capture_id=entry.capture_id, run_id=entry.run_id, index=entry.file_index or 0,
                           local_path=str(path), packets=packets, bytes=size, sha256=sha256, closed_at=_now())
        self._publish_until_sent(TaskName.FILE_CLOSED, event.model_dump(mode="json"), CONTROL_QUEUE)

    # -- running the worker -------------------------------------------------------------
    def run(self, concurrency: int = 8) -> None:
        # Past a file-size limit a write must fail with EFBIG (and end that capture as
        # LocalFileFailed), not kill the agent with SIGXFSZ.
        os_signal.signal(os_signal.SIGXFSZ, os_signal.SIG_IGN)
        worker_shutting_down.connect(lambda **_: self.shutdown(), weak=False)
        self.recover()
        self.start_look_back()
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        try:
            self.heartbeat()
        except Exception:
            log.warning("first heartbeat not sent", exc_info=True)
        beat.start()
        serve_probes(*self.config.probes, self.readiness)
        run_worker(self.app, self.queue, f"{self.queue}@{socket.gethostname()}", concurrency)

    def start_look_back(self) -> None:
        """Start the standing look-back ring, if this agent keeps one. An agent whose ring
        cannot open still captures (its captures say why they have no look-back)."""
        if self.config.look_back is None:
            return
        try:
            self.look_back = open_ring(self.config.look_back, self.config.look_back_filters, self.config.interface,
                                       self.config.netns)
        except (CaptureOpenError, InvalidField, OSError) as exc:
            self.look_back_state = f"down: {exc}"
            log.error("look-back ring not started: %s", exc)
            return
        threading.Thread(target=self.look_back.run, args=(self.closing,), name="look-back", daemon=True).start()
        log.info("look-back ring on %s: %d s, at most %d bytes in %s", self.config.interface,
                 self.config.look_back.seconds, self.config.look_back.spool_bytes, self.config.look_back.folder)

    def readiness(self) -> dict[str, str]:
        """Ready when the broker answers and the interface it captures on exists (and its
        look-back ring runs, when it keeps one)."""
        checks = {"broker": broker_state(self.config.broker_url),
                  "interface": interface_state(self.config.interface, self.config.netns)}
        if self.config.look_back is not None:
            checks["lookBack"] = self.look_back_state
        return checks
