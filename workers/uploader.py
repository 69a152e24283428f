"""Upload a finished capture to Blob Storage at Network Watcher's path, verify it, retry.

Idempotent: a blob already there with the same SHA-256 is not sent again. Transient
storage errors (timeouts, connection failures, 408, 429, 5xx, a stored copy that does not
verify) are retried with exponential backoff until the retry window closes; permanent
ones (authentication, 400/403/404/409, an API version the service refuses) end the
upload at once with the service's error code and message. Only a blob whose downloaded
content hashes to the capture's SHA-256 counts as stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from azure.core.exceptions import (
    AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError, ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient

from shared.messages import UploadRequest
from shared.retry import backoff
from shared.resource_ids import VirtualMachineId
from shared.storage_accounts import StorageAccount
from shared.storage_layout import BLOB_CONTAINER, blob_path

log = logging.getLogger("packetwatch.upload")
BLOCK_BYTES = 1024 * 1024
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
CLIENT_OPTIONS = dict(max_block_size=BLOCK_BYTES, max_single_put_size=BLOCK_BYTES, retry_total=1,
                      connection_timeout=5, read_timeout=30)


# What the service lost during an upload (it restarted, or the container was removed): each
# try creates the container and sends the whole file, so another try mends it.
RESTART_UPLOAD_CODES = {"InvalidBlockList", "InvalidBlockId", "ContainerNotFound", "BlobNotFound"}


class UploadFailed(RuntimeError):
    def __init__(self, blob: str, attempts: int, reason: str, permanent: bool) -> None:
        self.blob = blob
        self.attempts = attempts
        self.permanent = permanent
        kind = "the storage service refused it" if permanent else f"still failing after {attempts} attempts"
        super().__init__(f"upload of {blob} failed, {kind}: {reason}")


class ContentMismatch(AzureError):
    """The stored blob does not hash to the capture's SHA-256."""


def _stored_sha256(blob: BlobClient) -> str:
    digest = hashlib.sha256()
    for chunk in blob.download_blob(max_concurrency=1).chunks():
        digest.update(chunk)
    return digest.hexdigest()


def _upload_once(account: StorageAccount, name: str, path: Path, sha256: str) -> str:
    container = account.client(**CLIENT_OPTIONS).get_container_client(BLOB_CONTAINER)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    blob = container.get_blob_client(name)
    try:
        if blob.get_blob_properties().metadata.get("sha256") == sha256 and _stored_sha256(blob) == sha256:
            return blob.url
    except ResourceNotFoundError:
        pass
    with path.open("rb") as data:
        blob.upload_blob(data, length=path.stat().st_size, overwrite=True, metadata={"sha256": sha256},
                         max_concurrency=1)
    if _stored_sha256(blob) != sha256:
        raise ContentMismatch(f"{name} does not hash to {sha256}")
    return blob.url


def is_transient(error: BaseException) -> bool:
    """A failure another try may mend: the network, a timeout, throttling, the service's own
    trouble, a stored copy that did not verify, or blocks or a container the service lost
    during the upload (the next try creates the container and sends the whole file)."""
    if isinstance(error, (ServiceRequestError, ServiceResponseError, ContentMismatch)):
        return True
    if isinstance(error, HttpResponseError):
        code = getattr(error.error_code, "value", error.error_code)
        return error.status_code is None or error.status_code in (408, 429) or error.status_code >= 500 \
            or code in RESTART_UPLOAD_CODES
    return isinstance(error, AzureError)


def describe(error: BaseException) -> str:
    """The storage service's own words: HTTP status, error code and message."""
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = error.error_code or getattr(error.response, "reason", None) or "error"
        code = getattr(code, "value", code)  # the SDK's StorageErrorCode enum, as the service spells it
        message = (error.message or str(error)).splitlines()[0]
        return f"HTTP {error.status_code} {code}: {message}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def upload_capture(request: UploadRequest, account: StorageAccount, retry_seconds: float,
                   sleep: Callable[[float], None] = time.sleep) -> str:
    """Store the capture file; returns the blob URL or raises UploadFailed."""
    name = blob_path(VirtualMachineId.parse(request.target), request.created)
    retrying = backoff(first=FIRST_DELAY, maximum=MAX_DELAY, within=retry_seconds, transient=is_transient,
                       log=log, what=f"upload of {name}", sleep=sleep)
    try:
        return retrying(_upload_once, account, name, Path(request.local_path), request.sha256)
    except AzureError as exc:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise UploadFailed(name, attempts, describe(exc), permanent=not is_transient(exc)) from None
