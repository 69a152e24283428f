"""The agent's on-disk memory of which captures it started and finished.

A capture request can be delivered again (a broker or agent restart); the journal makes
starting it idempotent: begin() succeeds once per capture, ever.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _marker(self, key: str, state: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.{state}"

    def begin(self, key: str) -> bool:
        """True the first time `key` is begun; False for every later delivery."""
        try:
            fd = os.open(self._marker(key, "started"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, key.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def finish(self, key: str) -> None:
        self._marker(key, "finished").touch(exist_ok=True)

    def finished(self, key: str) -> bool:
        return self._marker(key, "finished").exists()
