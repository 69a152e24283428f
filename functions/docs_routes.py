"""The API's docs pages, /docs (Swagger UI) and /redoc, with their assets served from the
package (functions/console/vendor, fetched pinned from the npm registry by `make setup`),
never from a CDN; and the bearer scheme in the OpenAPI document, so calls can be tried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

VENDOR = Path(__file__).parent / "console" / "vendor"
ASSETS = "/console/vendor"
BEARER_PATHS = ("/subscriptions", "/packetwatch")
# The pages may load nothing from another host (ReDoc's footer would fetch Redocly's logo).
SAME_ORIGIN_ONLY = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"}
MISSING = ("<!doctype html><title>PacketWatch API docs</title><p>The docs pages' assets are not installed: run "
           "<code>make setup</code> (it fetches them from the npm registry into functions/console/vendor). The "
           "OpenAPI document is at <a href=\"/openapi.json\">/openapi.json</a>.")


def add_docs(app: FastAPI) -> None:
    """Call on an app made with docs_url=None and redoc_url=None."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a PacketWatch API token (packetwatch token create)"}}
            for path, operations in schema.get("paths", {}).items():
                if path.startswith(BEARER_PATHS):  # the alert webhook takes a function key; probes nothing
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def served(asset: str, page: Callable[[], HTMLResponse]) -> HTMLResponse:
        if not (VENDOR / asset).exists():
            return HTMLResponse(MISSING, status_code=503)
        answer = page()
        answer.headers.update(SAME_ORIGIN_ONLY)
        return answer

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return served("swagger-ui-bundle.js", lambda: get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} API", swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=f"{ASSETS}/favicon-32x32.png"))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return served("redoc.standalone.js", lambda: get_redoc_html(
            openapi_url="/openapi.json", title=f"{app.title} API", redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon-32x32.png", with_google_fonts=False))
