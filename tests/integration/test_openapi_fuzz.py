"""schemathesis against the app's own OpenAPI document: no generated request gets a 5xx."""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from functions.api import create_app
from shared.access import hash_token
from shared.config import Settings


TOKEN = "fuzz-token"


@pytest.fixture(scope="module")
def api_schema(broker_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "access.json").write_text(json.dumps({"tokens": [
        {"name": "fuzz", "sha256": hash_token(TOKEN), "subscriptions": ["*"], "role": "contributor"}]}))
    app = create_app(Settings(broker_url=broker_url, function_keys="fuzz-key",
                              access_config=str(folder / "access.json"),
                              database_url=f"sqlite:///{folder}/registry.db"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case):
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}", "x-functions-key": "fuzz-key"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
