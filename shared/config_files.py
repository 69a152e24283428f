"""Reading an operator's YAML or JSON configuration file into a typed model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import InvalidField

Model = TypeVar("Model", bound=BaseModel)
log = logging.getLogger("packetwatch.config")


def parse_model(model: type[Model], data: object, setting: str) -> Model:
    """Configuration data as `model`; InvalidField naming the setting and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidField.from_validation(exc, setting) from None


def load_model(model: type[Model], path: str | None, setting: str) -> Model:
    """The file at `path` as `model`: the model's defaults when no path is given, and — with
    a warning naming the setting, the file and what is wrong — when the file is missing,
    unreadable or invalid. Every default fails safe: no tokens or function keys refuse
    every call, no storage accounts or webhooks send nothing anywhere."""
    if not path:
        return model()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return parse_model(model, data, setting)
    except FileNotFoundError:
        log.warning("%s names %s, which does not exist: using no %s settings", setting, path, setting)
    except (OSError, yaml.YAMLError) as exc:
        log.error("%s: %s cannot be read (%s): using no %s settings", setting, path, exc, setting)
    except InvalidField as exc:
        log.error("%s: %s is not valid (%s): using no %s settings", setting, path, exc, setting)
    return model()
