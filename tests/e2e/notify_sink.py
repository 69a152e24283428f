"""A webhook endpoint for the tests: records every delivery and can fail the first N
deliveries for a given capture."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class NotifySink:
    deliveries: list[Delivery] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                subject = json.loads(body).get("subject", "")
                with sink.lock:
                    status = 500 if sink.failures[subject] > 0 else 200
                    if status == 500:
                        sink.failures[subject] -= 1
                    sink.deliveries.append(Delivery(dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def fail_first(self, subject: str, count: int) -> None:
        with self.lock:
            self.failures[subject] = count

    def for_subject(self, subject: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.event.get("subject") == subject]

    def stop(self) -> None:
        self.server.shutdown()
