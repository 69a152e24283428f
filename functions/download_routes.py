"""Where to fetch a capture's file: a short-lived read-only SAS URL for a stored blob, or
the path on the VM for a capture kept there."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from shared.errors import CaptureFileNotReady, UploadPending
from functions.arm_routes import ONE
from functions.deps import CapturePath, api_version
from shared.access import AccessConfig, Action
from shared.api_views import FileLocation
from shared.arm import PcStatus, format_arm_time
from shared.registry import CaptureRecord, Registry
from shared.storage_accounts import StorageAccounts
from shared.storage_layout import container_of, stored_blob_name

SAS_LIFETIME = timedelta(minutes=15)


def _sas_url(accounts: StorageAccounts, storage_id: str, container: str, stored_at: str) -> tuple[str, datetime]:
    from azure.storage.blob import BlobSasPermissions

    blob_name = stored_blob_name(stored_at, container)
    expires = datetime.now(timezone.utc) + SAS_LIFETIME
    url = accounts.lookup(storage_id).blob_sas_url(blob_name, BlobSasPermissions(read=True), expires, container)
    return url, expires


def build_download_router(registry: Registry, accounts: StorageAccounts, access: AccessConfig) -> APIRouter:
    router = APIRouter()

    def where(record: CaptureRecord) -> FileLocation:
        location = record.parameters.storage_location
        if record.storage_path and location.storage_id:
            url, expires = _sas_url(accounts, location.storage_id, container_of(location.storage_path),
                                    record.storage_path)
            return FileLocation(url=url, expires_on=format_arm_time(expires), blob=record.storage_path)
        if location.storage_id and record.status is PcStatus.STOPPED and not record.storage_path:
            raise UploadPending(f"{record.capture.name} is being uploaded to storage; try again "
                                "shortly", "packetCaptureName")
        on_vm = location.file_path or (record.summary.file_paths[0] if record.summary and
                                       record.summary.file_paths else None)
        if on_vm is None or record.status.value in ("NotStarted", "Running"):
            raise CaptureFileNotReady(f"{record.capture.name} has no file to download yet "
                                      f"(status {record.status.value})", "packetCaptureName")
        return FileLocation(target=record.parameters.target, file_path=on_vm,
                            message=f"the file is kept on the VM at {on_vm}")

    def instance_where(part: CaptureRecord) -> FileLocation:
        try:
            found = where(part)
        except (UploadPending, CaptureFileNotReady) as exc:
            found = FileLocation(target=part.parameters.target, message=exc.message)
        return found.model_copy(update={"instance_id": part.capture.instance})

    @router.get(ONE + "/downloadUrl", dependencies=[Depends(requirement(access, Action.READ)), Depends(api_version)])
    def download_url(capture: CapturePath) -> JSONResponse:
        """Where the file is: a read-only SAS URL, or the VM and path; a scale set capture's,
        one per instance."""
        record = registry.get(capture)
        if record.status is PcStatus.UNKNOWN:
            return JSONResponse(FileLocation(instances=[instance_where(part) for part in registry.instances(capture)])
                                .to_arm())
        return JSONResponse(where(record).to_arm())

    return router
