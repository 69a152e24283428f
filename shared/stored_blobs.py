"""The registry's word checked against storage: every blob it says is stored must be there.
A storage service that acknowledged a blob and then lost it (an emulator killed before it
saved its index, an account restored from an older backup) leaves the registry saying
"stored" for nothing; this finds each such blob and records that it is gone, so no one is
handed a download link to evidence that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from azure.core.exceptions import AzureError
from sqlalchemy import select

from shared.arm import PacketCaptureParameters, PacketCaptureStorageLocation
from shared.capture_files import file_uploaded
from shared.errors import InvalidField
from shared.messages import UploadResult
from shared.registry import Registry
from shared.registry_schema import capture_files, captures
from shared.storage_accounts import StorageAccounts
from shared.storage_layout import container_of, stored_blob_name


@dataclass(frozen=True)
class LostBlob:
    capture_id: str
    blob_url: str
    file_index: int | None  # a continuous capture's file; None for a capture's one file


def _missing(accounts: StorageAccounts, location: PacketCaptureStorageLocation, stored_at: str) -> bool:
    """True only when the account answers that the blob is not there (an account this
    deployment does not know, or one that cannot be reached, proves nothing)."""
    if not location.storage_id:
        return False
    try:
        account = accounts.lookup(location.storage_id)
        container = container_of(location.storage_path)
        return not account.client().get_blob_client(container, stored_blob_name(stored_at, container)).exists()
    except (InvalidField, AzureError, IndexError):
        return False


def audit_stored_blobs(registry: Registry, accounts: StorageAccounts) -> list[LostBlob]:
    """Check every blob the registry says is stored; record each one storage no longer has:
    its capture Error/StorageFailed (a continuous capture's file: its uploadError), saying so."""
    with registry.engine.connect() as conn:
        whole = conn.execute(select(captures.c.key, captures.c.arm_id, captures.c.run_id, captures.c.parameters,
                                    captures.c.storage_path).where(captures.c.storage_path.is_not(None))).all()
        files = conn.execute(select(capture_files.c.run_id, capture_files.c.idx, capture_files.c.path,
                                    capture_files.c.storage_path, captures.c.arm_id, captures.c.parameters)
                             .join(captures, captures.c.key == capture_files.c.capture_key)
                             .where(capture_files.c.storage_path.is_not(None))).all()
    gone = f"it had acknowledged (found missing {datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ})"
    lost = []
    for row in whole:
        location = PacketCaptureParameters.model_validate_json(row.parameters).storage_location
        if _missing(accounts, location, row.storage_path):
            kept = (f"the file is kept on the VM at {location.file_path}" if location.file_path else
                    "the agent had removed its copy once the upload was verified")
            registry.stored_blob_lost(row.key, row.run_id, row.storage_path,
                                      f"storage no longer has the blob {row.storage_path} {gone}; {kept}")
            lost.append(LostBlob(row.arm_id, row.storage_path, None))
    for file in files:
        location = PacketCaptureParameters.model_validate_json(file.parameters).storage_location
        if _missing(accounts, location, file.storage_path):
            file_uploaded(registry.engine, UploadResult(
                capture_id=file.arm_id, run_id=file.run_id, local_path=file.path, file_index=file.idx,
                error_message=f"storage no longer has the blob {file.storage_path} {gone}"))
            lost.append(LostBlob(file.arm_id, file.storage_path, file.idx))
    return lost
