"""No VM ever holds a SAS for a capture's blob. An agent uploads to a staging blob beside it
(UPLOADS_PREFIX, then the blob's own name) with a SAS for that alone; the control worker,
with the account's own credentials, seals the upload: a server-side copy of the staging blob
to the capture's blob, made only if that blob does not exist yet, then the staging blob
deleted. Once sealed, a capture cannot be overwritten by any VM, even one whose SAS has not
expired: its SAS never named that blob.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobProperties, BlobSasPermissions

from shared.storage_accounts import StorageAccount
from shared.storage_layout import staging_name

SOURCE_SAS_MINUTES = 15  # the copy's own read of the staging blob


class SealFailed(Exception):
    """The storage service ended the copy without the blob (failed or aborted)."""


def _copy_state(blob: BlobClient) -> BlobProperties | None:
    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        return None


def seal(account: StorageAccount, container: str, blob_name: str, uploaded_url: str) -> str | None:
    """The URL of the capture blob `blob_name` once the staging blob an agent uploaded for it
    (`uploaded_url`, without its SAS) is copied to it; None while the service still copies.
    Idempotent: a blob sealed already is not copied again. SealFailed when `uploaded_url` is
    not that blob's staging blob or the copy failed; AzureError from the service."""
    client = account.client()
    staged = client.get_blob_client(container, staging_name(blob_name))
    if uploaded_url != staged.url:
        raise SealFailed(f"{uploaded_url} is not where this capture's file is uploaded ({staged.url})")
    final = client.get_blob_client(container, blob_name)
    state = _copy_state(final)
    if state is None:
        expiry = datetime.now(timezone.utc) + timedelta(minutes=SOURCE_SAS_MINUTES)
        source = account.blob_sas_url(staged.blob_name, BlobSasPermissions(read=True), expiry, container)
        try:
            final.start_copy_from_url(source, match_condition=MatchConditions.IfMissing)
        except (ResourceExistsError, ResourceModifiedError):
            pass  # another delivery of this result copied it first
        state = _copy_state(final)
    status = state.copy.status if state is not None else None
    if status == "pending":
        return None
    if state is None or status not in (None, "success"):
        raise SealFailed(f"copying {staged.blob_name} to {blob_name} ended {status}: "
                         f"{state.copy.status_description if state is not None else 'no blob'}")
    try:
        staged.delete_blob()
    except ResourceNotFoundError:
        pass
    return final.url
