"""The registry's word checked against storage: every blob it says is stored must be there.
A storage service that acknowledged a blob and then lost it (an emulator killed before it
saved its index, an account restored from an older backup) leaves the registry saying
"stored" for nothing; this finds each such blob and records that it is gone, so no one is
handed a download link to evidence that does not exist."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from azure.core.exceptions import AzureError
from sqlalchemy import Engine, select, update

from shared.arm import PacketCaptureParameters, PcError, PcStatus
from shared.errors import InvalidField
from shared.registry_records import new_etag
from shared.registry_schema import capture_files, captures
from shared.storage_accounts import StorageAccounts
from shared.storage_layout import container_of, stored_blob_name


@dataclass(frozen=True)
class LostBlob:
    capture_id: str
    blob_url: str
    file_index: int | None  # a continuous capture's file; None for a capture's one file


def _missing(accounts: StorageAccounts, parameters: str, stored_at: str) -> bool:
    """True only when the account answers that the blob is not there (an account this
    deployment does not know, or one that cannot be reached, proves nothing)."""
    location = PacketCaptureParameters.model_validate_json(parameters).storage_location
    if not location.storage_id:
        return False
    try:
        account = accounts.lookup(location.storage_id)
        container = container_of(location.storage_path)
        return not account.client().get_blob_client(container, stored_blob_name(stored_at, container)).exists()
    except (InvalidField, AzureError, IndexError):
        return False


def audit_stored_blobs(engine: Engine, accounts: StorageAccounts) -> list[LostBlob]:
    """Check every blob the registry says is stored; record each one storage no longer has:
    its capture Error/StorageFailed (a continuous capture's file: its uploadError), saying so."""
    with engine.connect() as conn:
        whole = conn.execute(select(captures.c.key, captures.c.arm_id, captures.c.run_id, captures.c.parameters,
                                    captures.c.storage_path).where(captures.c.storage_path.is_not(None))).all()
        files = conn.execute(select(capture_files.c.capture_key, capture_files.c.run_id, capture_files.c.idx,
                                    capture_files.c.storage_path, captures.c.arm_id, captures.c.parameters)
                             .join(captures, captures.c.key == capture_files.c.capture_key)
                             .where(capture_files.c.storage_path.is_not(None))).all()
    found = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lost = []
    for row in whole:
        if _missing(accounts, row.parameters, row.storage_path):
            kept = PacketCaptureParameters.model_validate_json(row.parameters).storage_location.file_path
            message = (f"storage no longer has the blob {row.storage_path} it had acknowledged (found missing "
                       f"{found}); " + (f"the file is kept on the VM at {kept}" if kept else
                                        "the agent had removed its copy once the upload was verified"))
            with engine.begin() as conn:
                conn.execute(update(captures).where(captures.c.key == row.key, captures.c.run_id == row.run_id,
                                                    captures.c.storage_path == row.storage_path).values(
                    storage_path=None, status=PcStatus.ERROR.value, errors=json.dumps([PcError.STORAGE_FAILED.value]),
                    error_message=message, etag=new_etag()))
            lost.append(LostBlob(row.arm_id, row.storage_path, None))
    for file in files:
        if _missing(accounts, file.parameters, file.storage_path):
            with engine.begin() as conn:
                conn.execute(update(capture_files).where(
                    capture_files.c.capture_key == file.capture_key, capture_files.c.run_id == file.run_id,
                    capture_files.c.idx == file.idx).values(
                    storage_path=None,
                    upload_error=f"storage no longer has the blob {file.storage_path} it had acknowledged "
                                 f"(found missing {found})"))
            lost.append(LostBlob(file.arm_id, file.storage_path, file.idx))
    return lost
