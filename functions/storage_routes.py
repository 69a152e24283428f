"""GET /packetwatch/storageAccounts: the storage accounts this deployment can store captures
in (PACKETWATCH_STORAGE_CONFIG), for the console's dropdown. Names only (and the resource ID
where the configuration gives one): no URL, key or connection string ever leaves."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from functions.access import requirement
from shared.access import AccessConfig, Action
from shared.storage_accounts import StorageAccounts, storage_account_name


def build_storage_router(accounts: StorageAccounts, access: AccessConfig) -> APIRouter:
    router = APIRouter()

    @router.get("/packetwatch/storageAccounts", dependencies=[Depends(requirement(access, Action.READ))])
    def storage_accounts() -> JSONResponse:
        listed = [{"name": storage_account_name(key, "accounts") if key.startswith("/") else key,
                   "id": key if key.startswith("/") else None} for key in sorted(accounts.accounts)]
        return JSONResponse({"value": listed})

    return router
