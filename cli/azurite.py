"""Azurite, the Azure Storage emulator (npm package, pinned in the Makefile): `up`'s storage
account, as a process that can be stopped (saving what it acknowledged) and started again on
the same port and data folder; the tests and the demo run it too."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.supervisor import Child, free_port

log = logging.getLogger("packetwatch.azurite")
ACCOUNT = "devstoreaccount1"
STOP_GRACE_SECONDS = 15.0
# Azurite's documented, public development key: it opens nothing but the local emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BINARY = Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / ".bin" / "azurite-blob"


@dataclass
class Azurite:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    # HTTPS with this certificate and key (PEM files), and bearer tokens checked as Azurite's
    # `--oauth basic` does: what an account reached through Entra ID needs.
    tls: tuple[Path, Path] | None = None
    # The authority that signed that certificate, trusted by Azurite itself: a copy between its
    # own blobs fetches the source over HTTPS (as a control worker's sealing copy does).
    trust: Path | None = None
    log: Path | None = None  # where its output goes (default: azurite.log in workdir); no access log: it
    # would hold every SAS signature

    @property
    def account_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};")

    def start(self) -> subprocess.Popen:
        binary = str(BINARY) if BINARY.exists() else shutil.which("azurite-blob")
        if binary is None:
            raise FileNotFoundError("azurite-blob is not installed: run `make setup`")
        data = self.workdir / "azurite"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.log or self.workdir / "azurite.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", str(data),
             "--skipApiVersionCheck", "--disableTelemetry", "--loose", "--silent", *self._tls_options()],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **({"NODE_EXTRA_CA_CERTS": str(self.trust)} if self.trust else {})})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self.process
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"Azurite did not listen on {self.port}; see {self.log or self.workdir / 'azurite.log'}")

    def _tls_options(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--cert", str(self.tls[0]), "--key", str(self.tls[1]), "--oauth", "basic"]

    def stop(self) -> None:
        """Stop it as it keeps what it acknowledged: SIGTERM (it saves its blob index and exits),
        and a kill only past STOP_GRACE_SECONDS."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """End it at once, as a crash would: what it acknowledged since its last save is lost."""
        self._end(signal.SIGKILL)

    def _end(self, how: int) -> None:
        if self.process is not None:
            Child("azurite", self.process, STOP_GRACE_SECONDS, how).stop(log.info)
        self.process = None
