"""Storage accounts PacketWatch may write captures to: name or resource ID -> credentials.

The keys stay on the control side (the API): for each capture it signs a short-lived SAS
for the one blob that capture will write (create and write only), and the agent uploads
with that; download links are read-only SAS for one blob. No VM holds an account key.

Read from a YAML or JSON file named by PACKETWATCH_STORAGE_CONFIG:
    accounts:
      pcstore:                                  # account name, or its full resource ID
        connectionString: "DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;"
      /subscriptions/S/resourceGroups/R/providers/Microsoft.Storage/storageAccounts/other:
        accountUrl: https://other.blob.core.windows.net
        accountKey: "..."
        retrySeconds: 3600                      # how long uploads retry (default: PACKETWATCH_UPLOAD_RETRY_SECONDS)
"""

from __future__ import annotations

import re

from datetime import datetime

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.config_files import load_model
from shared.errors import InvalidField
from shared.storage_layout import BLOB_CONTAINER

STORAGE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Storage/storageAccounts/([a-z0-9]{3,24})",
    re.IGNORECASE)


def storage_account_name(storage_id: str, field: str = "properties.storageLocation.storageId") -> str:
    """The account name of a storage account resource ID."""
    match = STORAGE_ID.fullmatch(storage_id) if isinstance(storage_id, str) else None
    if match is None:
        raise InvalidField(field, storage_id, "is not a storage account resource ID "
                           "(/subscriptions/…/resourceGroups/…/providers/Microsoft.Storage/storageAccounts/NAME)")
    return match.group(1).lower()


class StorageAccount(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    connection_string: str | None = Field(default=None, alias="connectionString")
    account_url: str | None = Field(default=None, alias="accountUrl")
    account_key: str | None = Field(default=None, alias="accountKey")
    retry_seconds: float | None = Field(default=None, gt=0, alias="retrySeconds")

    @model_validator(mode="after")
    def _one_way_in(self) -> "StorageAccount":
        if not self.connection_string and not (self.account_url and self.account_key):
            raise ValueError("give connectionString, or accountUrl with accountKey")
        return self

    def client(self, **options: object) -> BlobServiceClient:
        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string, **options)
        return BlobServiceClient(self.account_url, credential=self.account_key, **options)  # type: ignore[arg-type]

    def ensure_container(self) -> None:
        """Make the captures' container (agents cannot: their SAS covers one blob)."""
        try:
            self.client(retry_total=0, connection_timeout=3).get_container_client(BLOB_CONTAINER).create_container()
        except ResourceExistsError:
            pass

    def blob_sas_url(self, blob_name: str, permission: BlobSasPermissions, expiry: datetime) -> str:
        """The URL of one blob of the captures' container with an account-key SAS for it alone."""
        client = self.client()
        token = generate_blob_sas(client.account_name, BLOB_CONTAINER, blob_name,  # type: ignore[arg-type]
                                  account_key=client.credential.account_key, permission=permission, expiry=expiry)
        return f"{client.get_blob_client(BLOB_CONTAINER, blob_name).url}?{token}"


class StorageAccounts(BaseModel):
    accounts: dict[str, StorageAccount] = Field(default_factory=dict)

    def lookup(self, storage_id: str, field: str = "storageId") -> StorageAccount:
        by_key = {key.lower(): account for key, account in self.accounts.items()}
        account = by_key.get(storage_id.lower()) or by_key.get(storage_account_name(storage_id, field))
        if account is None:
            raise InvalidField(field, storage_id, "is not a storage account this deployment knows "
                               "(PACKETWATCH_STORAGE_CONFIG)")
        return account


def load_storage_accounts(path: str | None) -> StorageAccounts:
    return load_model(StorageAccounts, path, "PACKETWATCH_STORAGE_CONFIG")
