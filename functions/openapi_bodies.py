"""Request-body schemas for routes that read their body themselves (to limit its size and
depth before parsing): the OpenAPI document still says what they take."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def json_body(model: type[BaseModel] | None = None, description: str = "") -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model` (any JSON object when None)."""
    if model is None:
        schema: dict[str, Any] = {"type": "object"}
    else:
        raw = model.model_json_schema(by_alias=True)
        schema = _inline(raw, raw.get("$defs", {}))
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}
