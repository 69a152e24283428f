"""The registry's record of a continuous capture's files: each file its agent closed, what
it holds, and where it was stored (or why it could not be)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.arm import CaptureFile
from shared.messages import FileClosed, UploadResult
from shared.registry_schema import capture_files
from shared.resource_ids import CaptureId


def record_file(engine: Engine, event: FileClosed) -> bool:
    """False when this file was recorded already (a message delivered twice)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(capture_files).values(
                capture_key=CaptureId.parse(event.capture_id).key, run_id=event.run_id, idx=event.index,
                path=event.local_path, packets=event.packets, bytes=event.bytes, sha256=event.sha256,
                closed_at=event.closed_at))
        return True
    except IntegrityError:
        return False


def file_uploaded(engine: Engine, result: UploadResult) -> None:
    with engine.begin() as conn:
        conn.execute(update(capture_files).where(
            capture_files.c.capture_key == CaptureId.parse(result.capture_id).key,
            capture_files.c.run_id == result.run_id, capture_files.c.idx == result.file_index,
        ).values(storage_path=result.storage_path, upload_error=result.error_message))


def files_of(engine: Engine, capture: CaptureId, run_id: str) -> list[CaptureFile]:
    with engine.connect() as conn:
        rows = conn.execute(select(capture_files).where(
            capture_files.c.capture_key == capture.key, capture_files.c.run_id == run_id,
        ).order_by(capture_files.c.idx)).all()
    return [CaptureFile(index=row.idx, path=row.path, packets=row.packets, bytes=row.bytes, sha256=row.sha256,
                        storage_path=row.storage_path, upload_error=row.upload_error) for row in rows]
