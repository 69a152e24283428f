"""Logging that never carries a secret: function keys, tokens and SAS signatures that
arrive in a URL's query string are replaced before any handler writes the line."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

SECRET_QUERY = re.compile(r"([?&](?:code|sig|token|access_token|api_key|key|secret)=)[^&\s\"']*", re.IGNORECASE)
REDACTED = "REDACTED"


def redact(text: str) -> str:
    return SECRET_QUERY.sub(lambda match: match.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with secrets redacted from every line it writes
    (its access log shows each request's query string, `?code=` included)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    return config
