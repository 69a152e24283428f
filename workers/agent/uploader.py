"""Upload a finished capture to the one blob its SAS allows (create and write only: the
agent holds no account key and can neither read nor list), then say where it is.

Integrity: every block is sent with its MD5 (validate_content), which the storage service
checks before it accepts the block, and the block list is committed only when every block
was accepted; the capture's SHA-256 is stored as the blob's metadata for anyone to check
the whole. When the request carries it (a continuous capture's file, hashed as it closed) it
goes with the upload; otherwise it is computed from the very bytes sent, as the SDK reads
them (one pass over the file, the hashing beside the blocks in flight), and set once they
are committed. A re-sent upload overwrites the same blob with the same content.

Transient storage errors (timeouts, connection failures, 408, 429, 5xx, blocks or a
container the service lost) are retried with exponential backoff until the retry window
closes; permanent ones (authentication or an expired SAS, 400/403/404/409, an API version
the service refuses) end the upload at once with the service's error code and message.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast
from pathlib import Path
from urllib.parse import unquote, urlparse

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobClient

from shared import storage_errors
from shared.messages import UploadRequest
from shared.retry import backoff
from workers.capture.failures import StorageFailure

log = logging.getLogger("packetwatch.upload")
BLOCK_BYTES = 4 * 1024 * 1024
UPLOAD_CONCURRENCY = 4
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
CLIENT_OPTIONS: dict[str, Any] = dict(max_block_size=BLOCK_BYTES, max_single_put_size=BLOCK_BYTES, retry_total=1,
                      connection_timeout=5, read_timeout=30)


# What the service lost during an upload (it restarted): the next try sends the whole file.
# The container is made by the control side, which holds the key; while it is missing the
# upload waits for it within its retry window.
RESTART_UPLOAD_CODES = frozenset({"InvalidBlockList", "InvalidBlockId", "ContainerNotFound", "BlobNotFound"})


class UploadFailed(StorageFailure):
    def __init__(self, blob: str, attempts: int, reason: str, permanent: bool) -> None:
        self.blob = blob
        self.attempts = attempts
        kind = "the storage service refused it" if permanent else f"still failing after {attempts} attempts"
        super().__init__(f"upload of {blob} failed, {kind}: {reason}")


class HashingReader:
    """The file as a stream read front to back, hashing what is read. It cannot seek, so the
    SDK reads it in order (one block at a time, its workers sending the blocks read so far)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _upload_once(url: str, path: Path, sha256: str | None) -> str:
    blob = BlobClient.from_blob_url(url, **CLIENT_OPTIONS)
    options: dict[str, Any] = dict(length=path.stat().st_size, overwrite=True, validate_content=True,
                                   max_concurrency=UPLOAD_CONCURRENCY)
    with path.open("rb") as data:
        if sha256 is not None:
            blob.upload_blob(data, metadata={"sha256": sha256}, **options)
        else:
            reader = HashingReader(data)
            blob.upload_blob(cast(IO[bytes], reader), **options)
            blob.set_blob_metadata({"sha256": reader.digest.hexdigest()})
    return url.split("?", 1)[0]


def is_transient(error: BaseException) -> bool:
    """A failure another try may mend: the network, a timeout, throttling, the service's own
    trouble, or blocks or a container the service lost during the upload (the next try sends
    the whole file again)."""
    return storage_errors.is_transient(error, RESTART_UPLOAD_CODES)


def describe(error: BaseException) -> str:
    """The storage service's own words: HTTP status, error code and message."""
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = getattr(error, "error_code", None) or getattr(error.response, "reason", None) or "error"
        code = getattr(code, "value", code)  # the SDK's StorageErrorCode enum, as the service spells it
        message = (error.message or str(error)).splitlines()[0]
        return f"HTTP {error.status_code} {code}: {message}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def upload_capture(request: UploadRequest, sleep: Callable[[float], None] = time.sleep) -> str:
    """Store the capture file; returns the blob's URL (without its SAS) or raises UploadFailed."""
    name = unquote(urlparse(request.upload.url).path).lstrip("/")
    retrying = backoff(first=FIRST_DELAY, maximum=MAX_DELAY, within=request.upload.retry_seconds,
                       transient=is_transient, log=log, what=f"upload of {name}", sleep=sleep)
    try:
        return retrying(_upload_once, request.upload.url, Path(request.local_path), request.sha256 or None)
    except AzureError as exc:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise UploadFailed(name, attempts, describe(exc), permanent=not is_transient(exc)) from None
