"""The API docs pages work with no internet: Swagger UI (with its Authorize button, from the
bearer scheme in the OpenAPI document) and ReDoc render in Chromium while every request to
another host is refused, their assets served from the package."""

import json
import os
import shutil
import subprocess

import httpx
import pytest

from tests.e2e.test_console import PLAYWRIGHT_CORE, ROOT, SCREENSHOTS


@pytest.mark.skipif(shutil.which("chromium") is None or not PLAYWRIGHT_CORE.exists(),
                    reason="make setup installs chromium and playwright-core")
def test_docs_and_redoc_render_from_the_package_with_no_other_host(lab):
    SCREENSHOTS.mkdir(exist_ok=True)
    answer = httpx.get(f"{lab.stack.api_url}/docs", timeout=10)
    assert "cdn" not in answer.text and "/console/vendor/swagger-ui-bundle.js" in answer.text
    assert "default-src 'self'" in answer.headers["content-security-policy"], "the browser loads nothing else"
    schema = httpx.get(f"{lab.stack.api_url}/openapi.json", timeout=10).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a PacketWatch API token (packetwatch token create)"}
    arm = next(path for path in schema["paths"] if path.startswith("/subscriptions"))
    assert all(op["security"] == [{"bearer": []}] for op in schema["paths"][arm].values())
    assert "security" not in schema["paths"]["/api/alerts"]["post"], "the webhook takes a function key"
    env = {**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT_CORE), "SCREENSHOTS": str(SCREENSHOTS),
           "API_URL": lab.stack.api_url}
    run = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "docs_offline.cjs")], env=env, text=True,
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"refused": []}, "nothing asked of another host"
