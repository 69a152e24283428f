"""The control worker's part in continuous capture to a storage account: each file an agent
closes gets its own blob, at Network Watcher's path with the file's suffix
(…/packetcapture_HH_MM_SS_mmm_00001.cap), and a create-and-write SAS for that blob alone,
sent back to the agent as an upload request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.capture_modes import ring_file_name
from shared.messages import FileClosed, UploadRequest
from shared.registry import CaptureRecord
from shared.resource_ids import VirtualMachineId
from shared.storage_accounts import SAS_MARGIN, StorageAccounts
from shared.storage_layout import blob_path, container_of


def blob_of(record: CaptureRecord, file_index: int | None = None) -> tuple[str, str]:
    """(container, blob name) of a capture's file: its one file, or its ring's file `file_index`."""
    blob = blob_path(VirtualMachineId.parse(record.parameters.target), record.created_at)
    return (container_of(record.parameters.storage_location.storage_path),
            blob if file_index is None else ring_file_name(blob, file_index))


@dataclass(frozen=True)
class FileUploads:
    accounts: StorageAccounts
    retry: timedelta

    def request_for(self, record: CaptureRecord, event: FileClosed) -> UploadRequest:
        """InvalidField when the capture's account is not (or no longer) configured here."""
        location = record.parameters.storage_location
        account = self.accounts.lookup(location.storage_id or "", "storageLocation.storageId")
        retry = timedelta(seconds=account.retry_seconds) if account.retry_seconds else self.retry
        container, blob = blob_of(record, event.index)
        target = account.upload_target(blob, datetime.now(timezone.utc) + retry + SAS_MARGIN, retry.total_seconds(),
                                       container)
        return UploadRequest(capture_id=event.capture_id, run_id=event.run_id, upload=target,
                             local_path=event.local_path, keep_local=bool(location.local_path), sha256=event.sha256,
                             file_index=event.index)
