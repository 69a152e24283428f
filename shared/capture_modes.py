"""Continuous capture as ARM defines it (continuousCapture + captureSettings), in force:
ARM's zeros and omissions replaced by its documented defaults, and each file's name.

continuousCapture null: a classic capture (one file, filePath, timeLimitInSeconds,
totalBytesPerSession). true: a rolling ring of fileCount files of at most fileSizeInBytes
each, the oldest removed first, until sessionTimeLimitInSeconds or a stop. false: the same
files, but the capture ends when fileCount files are full. In both, files are written at
localPath (or the spool) with a per-file suffix: capture.cap -> capture_00001.cap, …
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from shared.arm import PacketCaptureParameters
from shared.bpf import MAX_SNAPLEN

DEFAULT_FILE_COUNT = 10
DEFAULT_FILE_BYTES = 104857600
DEFAULT_SESSION_SECONDS = 86400
PCAP_FILE_HEADER_BYTES = 24
PCAP_RECORD_HEADER_BYTES = 16


@dataclass(frozen=True)
class RingSettings:
    file_count: int
    file_bytes: int
    seconds: int
    rolling: bool

    @classmethod
    def of(cls, params: PacketCaptureParameters) -> "RingSettings | None":
        """The ring a continuous capture runs; None for a classic capture."""
        if not params.continuous:
            return None
        settings = params.capture_settings
        return cls(file_count=(settings.file_count if settings else 0) or DEFAULT_FILE_COUNT,
                   file_bytes=(settings.file_size_in_bytes if settings else 0) or DEFAULT_FILE_BYTES,
                   seconds=(settings.session_time_limit_in_seconds if settings else 0) or DEFAULT_SESSION_SECONDS,
                   rolling=bool(params.continuous_capture))

    @staticmethod
    def smallest_file(bytes_per_packet: int) -> int:
        """A file must hold its header and one whole packet at the snap length."""
        return PCAP_FILE_HEADER_BYTES + PCAP_RECORD_HEADER_BYTES + (bytes_per_packet or MAX_SNAPLEN)


def ring_file_name(relative_path: str, index: int) -> str:
    """File `index` (1, 2, …) of a ring whose localPath is `relative_path`."""
    stem, suffix = posixpath.splitext(relative_path)
    return f"{stem}_{index:05d}{suffix}"
