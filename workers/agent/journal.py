"""The agent's on-disk memory of which captures it started and finished.

A capture request can be delivered again (a broker or agent restart); the journal makes
starting it idempotent: begin() succeeds once per capture run, ever. An entry begun but
never finished is a capture the agent was running when it died: on restart the agent
repairs its file and reports it (see Agent.recover).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JournalEntry:
    run_id: str
    capture_id: str
    path: str | None
    file_index: int | None = None  # the file's place in a continuous capture's ring

    def file(self, index: int | None) -> str | None:
        """The path of this run's file `index` (a ring's), or of its one file (None)."""
        if self.path is None or (index is None) != (self.file_index is None):
            return None
        if index is None or self.file_index is None:
            return self.path
        stem, suffix = os.path.splitext(self.path)
        return f"{stem.removesuffix(f'_{self.file_index:05d}')}_{index:05d}{suffix}"


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _marker(self, key: str, state: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.{state}"

    def _write(self, key: str, entry: JournalEntry) -> None:
        temporary = self._marker(key, "tmp")
        temporary.write_text(json.dumps(entry.__dict__))
        os.replace(temporary, self._marker(key, "started"))

    def begin(self, key: str, capture_id: str) -> bool:
        """True the first time `key` is begun; False for every later delivery."""
        try:
            fd = os.open(self._marker(key, "started"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(JournalEntry(key, capture_id, None).__dict__).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def set_path(self, key: str, capture_id: str, path: Path, file_index: int | None = None) -> None:
        self._write(key, JournalEntry(key, capture_id, str(path), file_index))

    def entry(self, key: str) -> JournalEntry | None:
        """What was journaled for run `key` (its last file's path), begun or finished."""
        try:
            return JournalEntry(**json.loads(self._marker(key, "started").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def finish(self, key: str) -> None:
        self._marker(key, "finished").touch(exist_ok=True)

    def finished(self, key: str) -> bool:
        return self._marker(key, "finished").exists()

    def unfinished(self) -> list[JournalEntry]:
        entries = []
        for marker in sorted(self.folder.glob("*.started")):
            if not marker.with_suffix(".finished").exists():
                try:
                    entries.append(JournalEntry(**json.loads(marker.read_text())))
                except (ValueError, TypeError):
                    continue
        return entries
