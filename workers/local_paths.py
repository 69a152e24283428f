"""Map a capture's path relative to the capture root onto the agent's capture folder,
refusing anything that would leave it (`..`, absolute parts, symlinks)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from shared.errors import InvalidField


def resolve_capture_path(capture_dir: Path, relative: str) -> Path:
    field = "relative_file_path"
    parts = PurePosixPath(relative).parts
    if not relative or "\x00" in relative or relative.startswith("/") or ".." in parts or not parts:
        raise InvalidField(field, relative, "must be a plain path inside the capture root")
    root = capture_dir.resolve()
    candidate = root.joinpath(*parts)
    parent = candidate.parent
    if os.path.realpath(parent) != str(parent) or candidate.is_symlink():
        raise InvalidField(field, relative, "passes through a symbolic link")
    parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if candidate.exists():
        raise InvalidField(field, relative, "a file already exists at that path; captures never overwrite files")
    return candidate
