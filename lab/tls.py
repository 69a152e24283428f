"""A throwaway certificate authority and a server certificate for 127.0.0.1 (trustme), as files."""

from __future__ import annotations

from pathlib import Path

import trustme


def server_certificate(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """Writes NAME.pem (certificate chain), NAME.key and NAME-ca.pem (the authority that signed it)."""
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}-ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    return cert, key, ca
