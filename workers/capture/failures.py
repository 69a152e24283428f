"""The agent's failures, in one tree. Each carries the ARM packetCaptureError code a
capture that meets it ends with (DESIGN.md §3); `failure_of` is the one place where what
the OS, libpcap and the filter parser raise is mapped into it.

    CaptureFailure (InternalError)
    ├── LocalFileFailure (LocalFileFailed): the file on the VM: a path refused, a write failed
    ├── CaptureStartFailure (CaptureFailed): capturing could not begin on the interface (or in its
    │   network namespace)
    └── StorageFailure (StorageFailed): the file could not be stored
"""

from __future__ import annotations

from shared.arm import PcError
from shared.errors import InvalidField


class CaptureFailure(Exception):
    code = PcError.INTERNAL_ERROR


class LocalFileFailure(CaptureFailure):
    code = PcError.LOCAL_FILE_FAILED


class CaptureStartFailure(CaptureFailure):
    code = PcError.CAPTURE_FAILED


class StorageFailure(CaptureFailure):
    code = PcError.STORAGE_FAILED


def failure_of(error: BaseException) -> tuple[PcError, str]:
    """The code and message a capture ends with when `error` ends it."""
    if isinstance(error, CaptureFailure):
        return error.code, str(error)
    if isinstance(error, PermissionError):  # the capture root or a file the OS would not let us write
        return PcError.LOCAL_FILE_FAILED, str(error)
    if isinstance(error, InvalidField):  # a filter this VM's addresses cannot compile
        return PcError.CAPTURE_FAILED, str(error)
    return PcError.INTERNAL_ERROR, f"{type(error).__name__}: {error}"
