"""The capture agent: a Celery worker that consumes only its own VM's queue.

Start and stop tasks are short: a capture runs on a thread of its own (capture_run.py), so
a stop request is taken while captures run. A journal on disk remembers which captures were
started, so a redelivered request never runs a capture twice; after a crash, recovery.py
ends what was running.
"""

from __future__ import annotations

import logging
import signal as os_signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery.signals import worker_shutting_down
from celery.worker.consumer import Consumer

from shared.arm import PcError, PcStatus, StopReason
from shared.broker import CONTROL_QUEUE, Handler, agent_queue_name, bound_queue, make_celery, register_tasks, run_worker, send
from shared.broker_identity import AGENTS_EXCHANGE, REPORTS_EXCHANGE
from shared.errors import InvalidField
from shared.messages import CaptureRequest, Heartbeat, RunProgress, StopRequest, TaskName, UploadRequest
from shared.probes import broker_state, serve_probes
from shared.resource_ids import VirtualMachineId
from shared.version import VERSION
from workers.agent import metrics
from workers.agent.capture_run import CaptureRun, Sink
from workers.agent.config import STATE_FOLDER, AgentConfig
from workers.agent.journal import Journal
from workers.agent.look_back import open_ring
from workers.agent.recovery import recover
from workers.agent.reports import Reports, event, now
from workers.agent.uploads import store_file
from workers.capture.failures import failure_of
from workers.capture.live_source import CaptureOpenError, interface_state
from workers.capture.look_back import LookBackRing
from workers.capture.session import StopSignal

log = logging.getLogger("packetwatch.agent")
MAX_CONCURRENT_CAPTURES = 16
SHUTDOWN_GRACE_SECONDS = 20.0


class AgentConsumer(Consumer):
    """Celery's consumer without native delayed delivery, which declares exchanges of its own
    (an agent's broker user may not; an agent never sends anything delayed)."""

    class Blueprint(Consumer.Blueprint):
        default_steps = [step for step in Consumer.Blueprint.default_steps if not step.endswith(":DelayedDelivery")]


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.queue = agent_queue_name(config.vm)
        self.app = make_celery("packetwatch-agent", config.broker_url)
        # Its own queue, bound to the agents' exchange under its own name (for what it sends
        # itself); the exchange is made by enrollment or the control worker, never by an agent.
        self.app.conf.task_queues = [bound_queue(self.queue, AGENTS_EXCHANGE, "topic", passive=True)]
        # No remote control: its broadcast exchange would let any agent command every worker.
        self.app.conf.worker_enable_remote_control = False
        self.app.conf.worker_consumer = f"{__name__}:AgentConsumer"
        self.reports = Reports(self.app)
        # Local state belongs to this VM identity: agents for other VMs on the same host
        # (one capture root) never read, recover or finish each other's captures.
        self.journal = Journal(config.capture_dir / STATE_FOLDER / self.queue / "journal")
        self.lock = threading.Lock()
        self.running: dict[str, tuple[StopSignal, threading.Thread]] = {}
        self.sinks: dict[str, Sink] = {}  # by run: what each running capture has written
        self.stopped_early: set[str] = set()
        self.closing = threading.Event()
        # A continuous capture's closed files are announced from here, never from its capture
        # thread (which must not wait on the broker).
        self.file_news = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-news")
        self.look_back: LookBackRing | None = None
        self.look_back_state = "ok"
        register_tasks(self.app, [Handler(TaskName.CAPTURE, self.start_capture),
                                  Handler(TaskName.STOP, self.stop_capture), Handler(TaskName.UPLOAD, self.upload)])
        metrics.AGENT.labels(config.vm.arm_id, config.interface, VERSION).set(1)
        metrics.RUNNING.set_function(lambda: len(self.running))

    # -- heartbeats ---------------------------------------------------------------------
    def heartbeat(self) -> None:
        with self.lock:
            running = sorted(self.running)
            progress = {run: RunProgress(packets=p, bytes=b) for run, (p, b) in
                        ((run, sink.progress()) for run, sink in self.sinks.items())}
        beat = Heartbeat(vm_id=self.config.vm.arm_id, version=VERSION, hostname=socket.gethostname(),
                         interface=self.config.interface, reported_at=now(), running=running,
                         location=self.config.location, progress=progress)
        send(self.app, beat, CONTROL_QUEUE, via=REPORTS_EXCHANGE)

    def _heartbeat_loop(self) -> None:
        while not self.closing.wait(self.config.heartbeat_seconds):
            try:
                self.heartbeat()
            except Exception:  # the broker may be away; the next beat tries again
                log.warning("heartbeat not sent", exc_info=True)

    # -- tasks --------------------------------------------------------------------------
    def start_capture(self, request: CaptureRequest) -> None:
        key = request.run_id
        if VirtualMachineId.parse(request.target) != self.config.vm:
            log.error("capture %s is for %s, not this VM; ignored", request.capture_id, request.target)
            return
        try:
            begun = self.journal.begin(key, request.capture_id)
        except OSError as exc:  # a full disk, say: the capture cannot be recorded, so it does not start
            self.reports.failed(request, PcError.LOCAL_FILE_FAILED,
                                f"the agent cannot write its journal in {self.journal.folder}: {exc.strerror or exc}")
            return
        if not begun:
            return  # delivered again: it ran (or was recovered after a crash) already
        if request.start_by is not None and now() > request.start_by:
            self.journal.finish(key)
            self.reports.failed(request, PcError.AGENT_STOPPED, f"the request reached the agent at "
                                f"{now().isoformat()}, after its start deadline {request.start_by.isoformat()}: "
                                "not started")
            return
        with self.lock:
            if key in self.stopped_early:
                self.stopped_early.discard(key)
                self.journal.finish(key)
                self.reports.status(event(request, PcStatus.STOPPED, stop_reason=StopReason.MANUALLY_STOPPED.value))
                return
            if len(self.running) >= MAX_CONCURRENT_CAPTURES:
                self.journal.finish(key)
                self.reports.failed(request, PcError.CAPTURE_FAILED,
                                    f"this agent already runs {MAX_CONCURRENT_CAPTURES} captures")
                return
            signal = StopSignal()
            thread = threading.Thread(target=self._run, args=(request, signal), name=f"capture-{key[-40:]}",
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

    def upload(self, request: UploadRequest) -> None:
        """A task of its own, so an upload survives an agent restart."""
        result = store_file(request, self.config.capture_dir, self.journal)
        self.reports.send_until_sent(result)
        if result.storage_path and not request.keep_local:  # stored: a file of this agent's captures
            Path(request.local_path).unlink(missing_ok=True)

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
    def _run(self, request: CaptureRequest, signal: StopSignal) -> None:
        key = request.run_id
        run = CaptureRun(self.config, request, signal, self.reports, self.journal, self.look_back, self.file_news,
                         on_sink=lambda sink: self._hold_sink(key, sink), own_queue=self.queue)
        try:
            run.run()
        except Exception as exc:
            code, message = failure_of(exc)
            if code is PcError.INTERNAL_ERROR:
                log.exception("capture %s failed", request.capture_id)
            self.reports.failed(request, code, message)
        finally:
            self.journal.finish(key)
            with self.lock:
                self.running.pop(key, None)
                self.sinks.pop(key, None)

    def _hold_sink(self, key: str, sink: Sink) -> None:
        with self.lock:
            self.sinks[key] = sink

    # -- running the worker -------------------------------------------------------------
    def run(self, concurrency: int = 8) -> None:
        # Past a file-size limit a write must fail with EFBIG (and end that capture as
        # LocalFileFailed), not kill the agent with SIGXFSZ.
        os_signal.signal(os_signal.SIGXFSZ, os_signal.SIG_IGN)
        worker_shutting_down.connect(lambda **_: self.shutdown(), weak=False)
        recover(self.journal, self.reports)
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
