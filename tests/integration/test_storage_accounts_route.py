"""GET /packetwatch/storageAccounts offers the configured accounts by name (the console's
dropdown), and never a URL, key or connection string; a token is required."""

import json

from fastapi.testclient import TestClient

from functions.api import create_app
from shared.config import Settings
from tests.integration.conftest import access_config, bearer

SECRET = "c2VjcmV0LWtleS1ub3QtdG8tbGVhaw=="


def test_accounts_are_listed_by_name_with_nothing_secret(database_url, broker_url, tmp_path):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"accounts": {
        "pcstore": {"connectionString": f"DefaultEndpointsProtocol=http;AccountName=pcstore;AccountKey={SECRET};"
                                        "BlobEndpoint=http://127.0.0.1:1/pcstore;"},
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/archive": {
            "accountUrl": "https://archive.blob.core.windows.net", "accountKey": SECRET}}}))
    app = create_app(Settings(database_url=database_url, broker_url=broker_url, storage_config=str(storage),
                              access_config=access_config(tmp_path)))
    with TestClient(app) as client:
        assert client.get("/packetwatch/storageAccounts").status_code == 401
        answer = client.get("/packetwatch/storageAccounts", headers=bearer("reader-a"))
    assert answer.status_code == 200
    assert answer.json() == {"value": [
        {"name": "archive", "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/archive"},
        {"name": "pcstore", "id": None}]}
    assert SECRET not in answer.text and "blob.core" not in answer.text and "127.0.0.1" not in answer.text
