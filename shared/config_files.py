"""Reading an operator's YAML or JSON configuration file into a typed model."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import InvalidField

Model = TypeVar("Model", bound=BaseModel)


def parse_model(model: type[Model], data: object, setting: str) -> Model:
    """Configuration data as `model`; InvalidField naming the setting and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidField.from_validation(exc, setting) from None


def load_model(model: type[Model], path: str | None, setting: str) -> Model:
    """The file at `path` as `model` (the model's defaults when no path is given);
    InvalidField naming the setting when it cannot be read or is not valid."""
    if not path:
        return model()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidField(setting, path, f"cannot be read: {exc}") from None
    return parse_model(model, data, setting)
