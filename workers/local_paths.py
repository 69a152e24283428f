"""Map a capture's path relative to the capture root onto the agent's capture folder,
refusing anything that would leave it (`..`, absolute parts, symlinks)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath



class CapturePathRefused(OSError):
    def __init__(self, relative: str, reason: str) -> None:
        self.relative = relative
        self.reason = reason
        super().__init__(f"capture file {relative!r} refused: {reason}")


def resolve_capture_path(capture_dir: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not relative or "\x00" in relative or relative.startswith("/") or ".." in parts or not parts:
        raise CapturePathRefused(relative, "must be a plain path inside the capture root")
    root = capture_dir.resolve()
    candidate = root.joinpath(*parts)
    parent = candidate.parent
    if os.path.realpath(parent) != str(parent) or candidate.is_symlink():
        raise CapturePathRefused(relative, "it passes through a symbolic link")
    parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if candidate.exists():
        raise CapturePathRefused(relative, "a file already exists there; captures never overwrite files")
    return candidate
