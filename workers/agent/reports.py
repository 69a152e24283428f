"""What an agent tells the control worker about a capture: status events, closed files,
statistics and upload results, each sent until the broker confirms it (the news must not be
lost while the broker is away)."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path

from celery import Celery
from pydantic import BaseModel

from shared.arm import PcError, PcStatus
from shared.broker import CONTROL_QUEUE, send
from shared.broker_identity import AGENTS_EXCHANGE, REPORTS_EXCHANGE
from shared.messages import CaptureRequest, FileClosed, StatusEvent, task_of
from shared.retry import backoff
from workers.agent import metrics

log = logging.getLogger("packetwatch.agent")
REPORT_RETRY_SECONDS = 600.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def event(request: CaptureRequest, status: PcStatus, **fields: object) -> StatusEvent:
    return StatusEvent(capture_id=request.capture_id, run_id=request.run_id, status=status, reported_at=now(),
                       **fields)


class Reports:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send_until_sent(self, message: BaseModel) -> None:
        """To the control worker, through the reports exchange (the only way an agent may
        publish to it), retried with backoff for up to REPORT_RETRY_SECONDS until the broker
        takes (and confirms) the message."""
        self._send(message, CONTROL_QUEUE, REPORTS_EXCHANGE)

    def to_self(self, message: BaseModel, own_queue: str) -> None:
        """To this agent's own queue, through the agents' exchange under its own name."""
        self._send(message, own_queue, AGENTS_EXCHANGE)

    def _send(self, message: BaseModel, queue: str, via: str) -> None:
        backoff(first=0.5, maximum=10.0, within=REPORT_RETRY_SECONDS, log=log,
                what=f"{task_of(message).value} for {getattr(message, 'capture_id', '')}")(send, self.app, message,
                                                                                         queue, via)

    def status(self, update: StatusEvent) -> None:
        if update.status in (PcStatus.STOPPED, PcStatus.ERROR):
            metrics.record_end(update, log)
        self.send_until_sent(update)

    def failed(self, request: CaptureRequest, error: PcError, message: str) -> None:
        self.status(event(request, PcStatus.ERROR, errors=[error], error_message=message))

    def file_closed(self, capture_id: str, run_id: str, index: int, path: Path, packets: int, size: int) -> None:
        """A continuous capture's file is complete: the control worker records it and, with a
        storage account, sends this agent the file's upload."""
        try:
            with path.open("rb") as data:
                sha256 = hashlib.file_digest(data, "sha256").hexdigest()
        except FileNotFoundError:
            sha256 = ""  # the ring removed it already (files smaller than the time it takes to hash them)
        self.send_until_sent(FileClosed(capture_id=capture_id, run_id=run_id, index=index, local_path=str(path),
                                        packets=packets, bytes=size, sha256=sha256, closed_at=now()))
