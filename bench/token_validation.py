"""What signing in with Entra ID costs a request: GET one capture from `packetwatch serve` over a
socket (a kept-alive connection) with an Entra ID token (RS256, validated against the tenant's
keys, its role assignment checked) against the same request with a static token (a SHA-256
lookup), interleaved in the same run on the same server. The keys come from a local issuer
(lab/oidc_issuer.py) before the first request; none is fetched while measuring (checked).
Usage: python -m bench.token_validation [--requests 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.alerts import percentile
from lab.oidc_issuer import AUDIENCE, oidc_issuer
from lab.stack import Stack, free_port, temporary_vhost
from shared.access import hash_token
from shared.resource_ids import CaptureId

SUBSCRIPTION = "00000000-0000-0000-0000-0000000bench"
TENANT = str(uuid.uuid4())
READER = str(uuid.uuid4())


def one_run(requests: int, workdir: Path) -> dict[str, float]:
    with oidc_issuer(workdir) as issuer, temporary_vhost() as broker_url:
        access = workdir / "access-entra.json"
        access.write_text(json.dumps({
            "tokens": [{"name": "bench", "sha256": hash_token("bench-static"), "subscriptions": [SUBSCRIPTION],
                        "role": "reader"}],
            "entra": {"audiences": [AUDIENCE], "tenants": [TENANT], "authority": issuer.url},
            "roleAssignments": [{"principalId": READER, "role": "reader", "scope": f"/subscriptions/{SUBSCRIPTION}"}]}))
        stack = Stack(broker_url, f"sqlite:///{workdir}/registry-{uuid.uuid4().hex[:6]}.db", workdir, extra_env={
            "PACKETWATCH_ACCESS_CONFIG": str(access), "SSL_CERT_FILE": str(issuer.ca),
            "PACKETWATCH_QUEUE_INTAKE": "false", "PACKETWATCH_LOG_LEVEL": "WARNING"})
        api = stack.start_server("api", free_port())
        capture = CaptureId(SUBSCRIPTION, "bench-rg", "bench-nw", "absent")
        tokens = {"static": "bench-static", "entra": issuer.sign(issuer.claims(TENANT, READER))}
        times: dict[str, list[float]] = {kind: [] for kind in tokens}
        try:
            with httpx.Client(base_url=api, timeout=30) as client:
                def get(token: str) -> float:
                    began = time.perf_counter()
                    answer = client.get(f"{capture.arm_id}?api-version=2026-01-01",
                                        headers={"Authorization": f"Bearer {token}"})
                    elapsed = (time.perf_counter() - began) * 1000
                    assert answer.status_code == 404, answer.text[:200]  # past the token and the role: no capture
                    return elapsed

                for token in tokens.values():
                    get(token)  # warm
                fetched = issuer.jwks_requests
                for _ in range(requests):
                    for kind, token in tokens.items():
                        times[kind].append(get(token))
                if issuer.jwks_requests != fetched:
                    raise RuntimeError("the server fetched keys while measuring")
        finally:
            stack.stop("api")
        return {f"{kind}_{stat}": value for kind, values in times.items()
                for stat, value in (("p50", statistics.median(values)), ("p99", percentile(values, 0.99)))}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    try:
        runs = [one_run(args.requests, workdir) for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"token validation: GET one capture through `packetwatch serve` and a socket, {args.requests} requests "
          f"of each kind interleaved, {args.runs} runs, median (min-max) of each run's p50 and p99; reference: the "
          "same request with a static token (SHA-256 lookup) on the same server")
    for stat in ("p50", "p99"):
        entra = [run[f"entra_{stat}"] for run in runs]
        static = [run[f"static_{stat}"] for run in runs]
        added = [e - s for e, s in zip(entra, static)]
        print(f"  {stat}: Entra ID RS256 {statistics.median(entra):6.2f} ms ({min(entra):.2f}-{max(entra):.2f})   "
              f"static {statistics.median(static):6.2f} ms ({min(static):.2f}-{max(static):.2f})   "
              f"added {statistics.median(added):5.2f} ms ({min(added):.2f}-{max(added):.2f})")
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
