"""A local server that answers as Azure's Instance Metadata Service does for the calls
PacketWatch makes: `Metadata: true` required (400 otherwise, as IMDS answers), requests
with X-Forwarded-For refused, compute/resourceId and compute/location as text or JSON."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@contextmanager
def imds(resource_id: str, location: str = "westeurope") -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if self.headers.get("Metadata") != "true" or "X-Forwarded-For" in self.headers:
                return self._answer(400, "application/json", json.dumps({"error": "Bad request. Required metadata "
                                                                         "header not specified"}))
            if "api-version" not in query:
                return self._answer(400, "application/json", json.dumps({"error": "Bad request. api-version was "
                                                                         "not specified in the request"}))
            answers = {"/metadata/instance/compute/resourceId": resource_id,
                       "/metadata/instance/compute/location": location}
            if url.path not in answers:
                return self._answer(404, "text/plain", "Not found")
            if query.get("format") == ["text"]:
                return self._answer(200, "text/plain; charset=utf-8", answers[url.path])
            return self._answer(200, "application/json", json.dumps(answers[url.path]))

        def _answer(self, status: int, kind: str, body: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
