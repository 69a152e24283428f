"""Storage accounts PacketWatch may write captures to: name or resource ID -> credentials.

The keys stay on the control side (the API): for each capture it signs a short-lived SAS
for the one staging blob that capture's upload goes to (create and write only), the agent
uploads with that, and the control worker seals it into the capture's blob
(shared/sealed_uploads.py); download links are read-only SAS for one blob. No VM holds an
account key, nor any SAS for a capture's blob.

An account reached through Entra ID (`credential: DefaultAzureCredential`, azure-identity:
managed identity in Azure Functions, a service principal's AZURE_* variables, `az login`)
needs no key anywhere: the SAS are user-delegation SAS, signed with a user delegation key
the API asks the account for (its identity needs "Storage Blob Data Contributor" on it).

Read from a YAML or JSON file named by PACKETWATCH_STORAGE_CONFIG:
    accounts:
      pcstore:                                  # account name, or its full resource ID
        connectionString: "DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;"
      /subscriptions/S/resourceGroups/R/providers/Microsoft.Storage/storageAccounts/other:
        accountUrl: https://other.blob.core.windows.net
        accountKey: "..."
        retrySeconds: 3600                      # how long uploads retry (default: PACKETWATCH_UPLOAD_RETRY_SECONDS)
      keyless:
        accountUrl: https://keyless.blob.core.windows.net
        credential: DefaultAzureCredential
        managedIdentityClientId: "..."          # a user-assigned identity (optional)
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from shared.config_files import load_model
from shared.errors import InvalidField
from shared.messages import UploadTarget
from shared.storage_layout import BLOB_CONTAINER, staging_name

# The API waits on storage for seconds, never for the SDK's retries (its first backoff is 15 s):
# a container it cannot make now is made later, and the capture's upload waits for it.
CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 10}
# How long an upload SAS outlives the last moment its upload could still be going (the end of
# its retry window): the clock skew between a VM and the storage service, nothing more.
SAS_MARGIN = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(days=7) - timedelta(minutes=5)
CLOCK_SKEW = timedelta(minutes=5)

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
    credential: Literal["DefaultAzureCredential"] | None = None
    managed_identity_client_id: str | None = Field(default=None, alias="managedIdentityClientId")
    # A user-delegation SAS cannot outlive its key (7 days): uploads retry for at most 6.
    retry_seconds: float | None = Field(default=None, gt=0, le=6 * 86400, alias="retrySeconds")

    _client: BlobServiceClient | None = PrivateAttr(default=None)
    _delegation_key: tuple[UserDelegationKey, datetime] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _container_urls: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_way_in(self) -> "StorageAccount":
        ways = [bool(self.connection_string), bool(self.account_url and self.account_key),
                bool(self.account_url and self.credential)]
        if sum(ways) != 1:
            raise ValueError("give one of: connectionString; accountUrl with accountKey; "
                             "accountUrl with credential: DefaultAzureCredential")
        if self.managed_identity_client_id and not self.credential:
            raise ValueError("managedIdentityClientId goes with credential: DefaultAzureCredential")
        return self

    def client(self) -> BlobServiceClient:
        """One client per account and process (its connection pool and, for Entra ID, its token cache)."""
        if self._client is None:
            if self.connection_string:
                self._client = BlobServiceClient.from_connection_string(self.connection_string, **CLIENT_OPTIONS)
            elif self.credential:
                from azure.identity import DefaultAzureCredential

                identity = DefaultAzureCredential(managed_identity_client_id=self.managed_identity_client_id)
                self._client = BlobServiceClient(self.account_url, credential=identity,  # type: ignore[arg-type]
                                                 **CLIENT_OPTIONS)
            else:
                self._client = BlobServiceClient(self.account_url, credential=self.account_key,  # type: ignore[arg-type]
                                                 **CLIENT_OPTIONS)
        return self._client

    def ensure_container(self, container: str = BLOB_CONTAINER) -> None:
        """Make the captures' container (agents cannot: their SAS covers one blob)."""
        try:
            self.client().get_container_client(container).create_container()
        except ResourceExistsError:
            pass

    def blob_url(self, blob_name: str, container: str = BLOB_CONTAINER) -> str:
        """The URL of one blob of a captures' container, as the storage SDK spells it (its
        container's URL, then the name quoted as the SDK quotes it), cheap enough per listed row."""
        prefix = self._container_urls.get(container)
        if prefix is None:
            prefix = self._container_urls[container] = self.client().get_container_client(container).url
        return f"{prefix}/{quote(blob_name, safe='~/')}"

    def blob_sas_url(self, blob_name: str, permission: BlobSasPermissions, expiry: datetime,
                     container: str = BLOB_CONTAINER) -> str:
        """The URL of one blob of a captures' container with a SAS for it alone: signed with
        the account key, or for an Entra ID account with a user delegation key."""
        client = self.client()
        signing: dict[str, Any]
        if self.credential:
            signing = {"user_delegation_key": self._user_delegation_key(expiry)}
        else:
            signing = {"account_key": client.credential.account_key}
        token = generate_blob_sas(client.account_name, container, blob_name,  # type: ignore[arg-type]
                                  permission=permission, expiry=expiry, **signing)
        return f"{client.get_blob_client(container, blob_name).url}?{token}"

    def upload_target(self, blob_name: str, expiry: datetime, retry_seconds: float,
                      container: str = BLOB_CONTAINER) -> UploadTarget:
        """What an agent needs to store a capture at `blob_name`: the URL of its staging blob
        with a create-and-write SAS for that alone (the control side seals it into
        `blob_name`: shared/sealed_uploads.py)."""
        url = self.blob_sas_url(staging_name(blob_name), BlobSasPermissions(create=True, write=True), expiry,
                                container)
        return UploadTarget(url=url, retry_seconds=retry_seconds)

    def _user_delegation_key(self, covering: datetime) -> UserDelegationKey:
        """A user delegation key valid until `covering` (a SAS cannot outlive its key): one key
        for as long as it lasts (Azure allows seven days), so one call signs many captures."""
        with self._lock:
            if self._delegation_key is None or self._delegation_key[1] < covering:
                now = datetime.now(timezone.utc)
                expiry = now + DELEGATION_KEY_LIFETIME
                self._delegation_key = (self.client().get_user_delegation_key(now - CLOCK_SKEW, expiry), expiry)
            return self._delegation_key[0]


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
