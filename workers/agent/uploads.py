"""The agent's upload task: store one finished file at its blob (workers/agent/uploader.py) and
say how it went, as the UploadResult the control worker applies. Kept apart from the
capture code: an upload is a task of its own, so it survives an agent restart."""

from __future__ import annotations

import logging
from pathlib import Path

from shared.messages import UploadRequest, UploadResult
from workers.agent import metrics
from workers.agent.config import STATE_FOLDER
from workers.agent.journal import Journal
from workers.agent.uploader import UploadFailed, upload_capture

log = logging.getLogger("packetwatch.agent")
GONE = "the file is no longer on the VM (a rolling ring removes its oldest file first, uploaded or not)"


def store_file(request: UploadRequest, capture_dir: Path, journal: Journal) -> UploadResult:
    """Upload and verify the file; the result carries its blob URL, or why it failed. Only a
    file of that capture's own run is ever read: the one this agent journaled for the run (or
    the ring's file of that index), a regular file under `capture_dir` outside the agent's own
    state, whatever the request names (links followed)."""
    path = Path(request.local_path)
    entry = journal.entry(request.run_id)
    refused = f"{request.local_path} is not a file of run {request.run_id} of this agent: not uploaded"
    if entry is None or entry.capture_id != request.capture_id or entry.file(request.file_index) != request.local_path:
        return _failed(request, refused)
    if not path.exists():
        return _failed(request, GONE)
    if not is_capture_file(path, capture_dir):
        return _failed(request, refused)
    try:
        with metrics.UPLOAD_SECONDS.time():
            url = upload_capture(request)
    except UploadFailed as exc:
        return _failed(request, str(exc))
    size = path.stat().st_size
    metrics.UPLOADS.labels("stored").inc()
    metrics.UPLOADED_BYTES.inc(size)
    log.info("capture %s: %d bytes stored at %s", request.capture_id, size, url,
             extra={"capture_id": request.capture_id, "run_id": request.run_id})
    return UploadResult(capture_id=request.capture_id, run_id=request.run_id, storage_path=url, local_path=str(path),
                        file_index=request.file_index)


def is_capture_file(path: Path, capture_dir: Path) -> bool:
    real, root = path.resolve(), capture_dir.resolve()
    return real.is_file() and real.is_relative_to(root) and not real.is_relative_to(root / STATE_FOLDER)


def _failed(request: UploadRequest, reason: str) -> UploadResult:
    metrics.UPLOADS.labels("failed").inc()
    log.error("capture %s: upload of %s failed: %s", request.capture_id, request.local_path, reason,
              extra={"capture_id": request.capture_id, "run_id": request.run_id})
    return UploadResult(capture_id=request.capture_id, run_id=request.run_id, error_message=reason,
                        local_path=request.local_path, file_index=request.file_index)
