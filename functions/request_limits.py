"""Refuse oversized and deeply nested bodies before anything parses them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.errors import InvalidField, PayloadTooLarge

MAX_JSON_DEPTH = 64


def _depth_exceeds(value: object, limit: int) -> bool:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
    return False


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body as JSON: 413 past `max_bytes` (checked while reading), 400 when it is not
    JSON or nests deeper than MAX_JSON_DEPTH."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request bodies are limited to {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request bodies are limited to {max_bytes} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise InvalidField("body", "(not JSON)", "the request body must be JSON") from None
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        raise InvalidField("body", "(nested too deep)", f"nests deeper than {MAX_JSON_DEPTH} levels")
    return body
