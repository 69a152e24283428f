"""A C stdio stream (FILE *) on a file descriptor whose every write is checked.

libpcap's pcap_dump writes through stdio and reports no errors; glibc drops a buffer it
could not write and carries on, which can leave a gap inside a file. This stream is made
with fopencookie: stdio buffers in C as usual, and each full buffer comes to `_write`,
which writes it with os.write and remembers the first failure (ENOSPC, EDQUOT, EIO,
EFBIG…). After a failure it writes nothing more, so the file is always a clean prefix
of what was meant to be written, and `written` says exactly how long.
"""

from __future__ import annotations

from typing import Any
import ctypes
import errno
import os

BUFFER_BYTES = 256 * 1024
_IOFBF = 0
_SEEK_CUR = 1

_WRITE = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_SEEK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int)
_CLOSE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _CookieFunctions(ctypes.Structure):
    _fields_ = [("read", ctypes.c_void_p), ("write", _WRITE), ("seek", _SEEK), ("close", _CLOSE)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fopencookie.restype = ctypes.c_void_p
_libc.fopencookie.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _CookieFunctions]
_libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]


class CheckedStream:
    """`file` is a FILE * that writes to `fd` (which stays the caller's to close)."""

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd = fd
        self.written = start
        self.error: OSError | None = None
        self._functions = _CookieFunctions(None, _WRITE(self._write), _SEEK(self._seek), _CLOSE(self._close))
        self.file = _libc.fopencookie(None, b"w", self._functions)
        if not self.file:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self._buffer = ctypes.create_string_buffer(BUFFER_BYTES)
        _libc.setvbuf(self.file, self._buffer, _IOFBF, BUFFER_BYTES)

    def _write(self, _cookie: int, data: int, size: int) -> int:
        if self.error is not None:
            return -1
        view = memoryview((ctypes.c_char * size).from_address(data)).cast("B")
        done = 0
        try:
            while done < size:
                done += os.write(self.fd, view[done:])
        except OSError as exc:
            self.error = exc
            self.written += done
            ctypes.set_errno(exc.errno or errno.EIO)
            return -1
        self.written += size
        return size

    def _seek(self, _cookie: int, offset: Any, whence: int) -> int:  # offset: off64_t*
        if whence != _SEEK_CUR or offset[0] != 0:
            return -1
        offset[0] = self.written  # only ftell is asked of this stream
        return 0

    def _close(self, _cookie: int) -> int:
        return 0
