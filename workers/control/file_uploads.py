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


@dataclass(frozen=True)
class FileUploads:
    accounts: StorageAccounts
    retry: timedelta

    def request_for(self, record: CaptureRecord, event: FileClosed) -> UploadRequest:
        """InvalidField when the capture's account is not (or no longer) configured here."""
        location = record.parameters.storage_location
        account = self.accounts.lookup(location.storage_id or "", "storageLocation.storageId")
        retry = timedelta(seconds=account.retry_seconds) if account.retry_seconds else self.retry
        blob = ring_file_name(blob_path(VirtualMachineId.parse(record.parameters.target), record.created_at),
                              event.index)
        target = account.upload_target(blob, datetime.now(timezone.utc) + retry + SAS_MARGIN, retry.total_seconds(),
                                       container_of(location.storage_path))
        return UploadRequest(capture_id=event.capture_id, run_id=event.run_id, upload=target,
                             local_path=event.local_path, keep_local=bool(location.local_path), sha256=event.sha256,
                             file_index=event.index)
