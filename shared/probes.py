"""The small HTTP server agents, the control worker and the notifier each run beside their
Celery worker: /metrics (Prometheus text format), /healthz (the process lives, and which
process it is: its pid, so a supervisor can tell its own from another's) and /readyz
(it can do its work: 200, or 503 naming what is down), as the API serves them."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import Engine, text

from shared.version import VERSION

log = logging.getLogger("packetwatch.probes")
ReadinessChecks = Callable[[], dict[str, str]]
PROBE_SECONDS = 2.0


def _down(exc: Exception) -> str:
    return f"down: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def database_state(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; say which
        return _down(exc)


def broker_state(broker_url: str) -> str:
    try:
        with Connection(broker_url, connect_timeout=PROBE_SECONDS) as conn:
            conn.ensure_connection(max_retries=0, timeout=PROBE_SECONDS)
        return "ok"
    except Exception as exc:
        return _down(exc)


def readiness(checks: dict[str, str]) -> tuple[int, dict]:
    """The /readyz answer from named checks, each "ok" or "down: why"."""
    down = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ready" if not down else f"not ready: {', '.join(down)} down", "checks": checks,
            "version": VERSION}
    return (503 if down else 200), body


def serve_probes(host: str, port: int, checks: ReadinessChecks) -> ThreadingHTTPServer | None:
    """Start serving on a daemon thread; port 0 serves nothing. A port already taken is
    logged and skipped: the worker runs on without its probes rather than not at all."""
    if not port:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            elif path == "/healthz":
                self._answer(200, "application/json", json.dumps({"status": "ok", "version": VERSION,
                                                                   "pid": os.getpid()}).encode())
            elif path == "/readyz":
                status, body = readiness(checks())
                self._answer(status, "application/json", json.dumps(body).encode())
            else:
                self._answer(404, "text/plain", b"not found: /metrics, /healthz or /readyz\n")

        def _answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        log.warning("cannot serve /metrics, /healthz and /readyz on %s:%d: %s", host, port, exc.strerror or exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    log.info("serving /metrics, /healthz and /readyz on http://%s:%d", host, port)
    return server
