"""Upload a finished capture to Blob Storage at Network Watcher's path, verify it, retry.

Idempotent: a blob already there with the same SHA-256 is not sent again. Storage errors
are retried with exponential backoff until the retry window closes; only a blob whose
downloaded content hashes to the capture's SHA-256 counts as stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared.messages import UploadRequest
from shared.resource_ids import VirtualMachineId
from shared.storage_accounts import StorageAccount
from shared.storage_layout import BLOB_CONTAINER, blob_path

log = logging.getLogger("packetwatch.upload")
BLOCK_BYTES = 1024 * 1024
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
CLIENT_OPTIONS = dict(max_block_size=BLOCK_BYTES, max_single_put_size=BLOCK_BYTES, retry_total=1,
                      connection_timeout=5, read_timeout=30)


class UploadFailed(RuntimeError):
    def __init__(self, blob: str, attempts: int, reason: str) -> None:
        self.blob = blob
        self.attempts = attempts
        super().__init__(f"upload of {blob} failed after {attempts} attempts: {reason}")


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


def upload_capture(request: UploadRequest, account: StorageAccount, retry_seconds: float,
                   sleep: Callable[[float], None] = time.sleep) -> str:
    """Store the capture file; returns the blob URL or raises UploadFailed."""
    name = blob_path(VirtualMachineId.parse(request.target), request.created)
    deadline = time.monotonic() + retry_seconds
    delay, attempts = FIRST_DELAY, 0
    while True:
        attempts += 1
        try:
            return _upload_once(account, name, Path(request.local_path), request.sha256)
        except AzureError as exc:
            if time.monotonic() + delay > deadline:
                raise UploadFailed(name, attempts, str(exc).splitlines()[0]) from None
            log.warning("upload of %s failed (attempt %d), retrying in %.0fs: %s", name, attempts, delay,
                        str(exc).splitlines()[0])
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
