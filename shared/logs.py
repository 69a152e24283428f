"""Logging for every PacketWatch process: text for people by default, JSON lines with
PACKETWATCH_LOG_FORMAT=json (each line's `capture_id` ties one capture's events together
across the API, the control worker, its agent and the notifier), and never a secret:
function keys, tokens and SAS signatures in a URL's query string are replaced before any
handler writes the line."""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
import threading
from typing import Any, Literal

SECRET_QUERY = re.compile(r"([?&](?:code|sig|token|access_token|api_key|key|secret)=)[^&\s\"']*", re.IGNORECASE)
REDACTED = "REDACTED"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["levelname", "name", "message"]
JSON_RENAMED = {"levelname": "level", "name": "logger"}
# Celery's own INFO line for every task received and done (two per heartbeat) says nothing
# an operator needs; PacketWatch logs each capture event itself, and failures stay visible.
QUIET_LOGGERS = {"celery.app.trace": logging.WARNING, "celery.worker.strategy": logging.WARNING,
                 "httpx": logging.WARNING, "azure": logging.WARNING, "alembic.runtime.plugins": logging.WARNING}
LogFormat = Literal["text", "json"]


def redact(text: str) -> str:
    return SECRET_QUERY.sub(lambda match: match.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def formatter(kind: LogFormat) -> logging.Formatter:
    if kind == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMED, timestamp="time")  # ISO 8601, UTC
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(kind: LogFormat = "text", level: str = "INFO") -> None:
    """One handler on stderr for the whole process, in the chosen format, secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings (Celery's about root, say) become log lines too
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)


def stdout_into_log(name: str = "stdout") -> None:
    """With JSON logs, what a library prints on this process's standard output (Celery's
    shutdown notices) becomes log lines too, so a log pipeline reads nothing but JSON. Only
    for workers: commands print their answers on standard output."""
    from pythonjsonlogger.json import JsonFormatter

    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers):
        return
    read, write = os.pipe()
    os.dup2(write, sys.stdout.fileno())
    os.close(write)
    printed = logging.getLogger(name)

    def pump() -> None:
        with os.fdopen(read, "r", errors="replace") as lines:
            for line in lines:
                if line.strip():
                    printed.info(line.strip())

    threading.Thread(target=pump, name="stdout-log", daemon=True).start()


def uvicorn_log_config(kind: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's own logging configuration in the chosen format, with secrets redacted from
    every line it writes (its access log shows each request's query string, `?code=` included)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    if kind == "json":
        for name in config["formatters"]:
            config["formatters"][name] = {"()": formatter, "kind": "json"}
    return config
