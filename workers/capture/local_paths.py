"""Create a capture file inside the capture root: exclusively (never an existing file),
and never through a symbolic link — enforced by the kernel at the moment of opening
(openat from a folder handle, component by component, with O_NOFOLLOW and O_EXCL), not by
a check beforehand that a race could outrun."""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

from workers.capture.failures import LocalFileFailure

FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class CapturePathRefused(LocalFileFailure, OSError):
    def __init__(self, relative: str, reason: str) -> None:
        self.relative = relative
        self.reason = reason
        super().__init__(f"capture file {relative!r} refused: {reason}")


def _parts(relative: str) -> tuple[str, ...]:
    parts = PurePosixPath(relative).parts
    if not relative or "\x00" in relative or relative.startswith("/") or ".." in parts or not parts \
            or any(part in (".", "") for part in parts):
        raise CapturePathRefused(relative, "must be a plain path inside the capture root")
    return parts


def create_capture_file(capture_dir: Path, relative: str) -> tuple[int, Path]:
    """A new file at `relative` under `capture_dir`, open for writing: (fd, path)."""
    parts = _parts(relative)
    capture_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    folder = os.open(capture_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o750, dir_fd=folder)
            except FileExistsError:
                pass
            inner = os.open(part, FOLDER_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], FILE_FLAGS, 0o640, dir_fd=folder)
    except FileExistsError:
        raise CapturePathRefused(relative, "a file already exists there; captures never overwrite or "
                                           "share files") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise CapturePathRefused(relative, "it passes through a symbolic link or a file") from None
        raise CapturePathRefused(relative, exc.strerror or str(exc)) from None
    finally:
        os.close(folder)
    return fd, capture_dir.joinpath(*parts)
