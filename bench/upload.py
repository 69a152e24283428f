"""Uploads at the storage SDK's speed: the agent's upload of a capture file (workers/uploader:
SAS for its one blob, per-block MD5 checked by the service, SHA-256 as metadata, retries)
against the SDK's own `upload_blob` of the same file to the same Azurite configured like for
like: the same integrity check (validate_content=True: an MD5 per block), the same
concurrency, block size and single-put threshold (the agent's CLIENT_OPTIONS), alternating,
in the same run; the reference's options are printed beside its figure. Then the agent's memory: 20 consecutive uploads in
one process, its RSS after each (the series, and its growth from the second to the last).
Medians (min-max); nothing is left in the temp dir.
The agent does what the reference does and more: it also hashes the file (SHA-256, as the SDK
reads it, for a capture whose statistics are still being read) and stores the digest as the
blob's metadata, which this bench checks against the file's; nothing is downloaded back.
Usage: python -m bench.upload [--mib 512] [--runs 5] [--series 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from azure.storage.blob import BlobClient, BlobServiceClient

from cli.azurite import Azurite
from shared.messages import UploadRequest
from shared.storage_accounts import StorageAccount
from workers.agent.uploader import CLIENT_OPTIONS, UPLOAD_CONCURRENCY

CONTAINER = "bench-uploads"


def make_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(mib):
            block = os.urandom(1 << 20)
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def request_for(account: StorageAccount, path: Path, name: str) -> UploadRequest:
    """As the agent sends it at the end of a capture: without the SHA-256, which the uploader computes."""
    target = account.upload_target(name, datetime.now(timezone.utc) + timedelta(hours=1), 600, CONTAINER)
    return UploadRequest(capture_id="bench", run_id="bench", upload=target, local_path=str(path), keep_local=True)


def agent_upload(request: UploadRequest) -> float:
    from workers.agent.uploader import upload_capture

    began = time.perf_counter()
    upload_capture(request)
    return time.perf_counter() - began


REFERENCE = dict(validate_content=True, max_concurrency=UPLOAD_CONCURRENCY)


def sdk_upload(connection_string: str, path: Path, name: str) -> float:
    blob = BlobClient.from_connection_string(connection_string, CONTAINER, name, **CLIENT_OPTIONS)
    began = time.perf_counter()
    with path.open("rb") as data:
        blob.upload_blob(data, overwrite=True, **REFERENCE)
    return time.perf_counter() - began


SERIES = """
import json, sys, time
from shared.messages import UploadRequest
from workers.agent.uploader import upload_capture
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) // 1024
requests = [UploadRequest.model_validate(r) for r in json.loads(sys.stdin.read())]
series = [rss()]
for request in requests:
    upload_capture(request)
    series.append(rss())
print(json.dumps(series))
"""


def rss_series(account: StorageAccount, path: Path, count: int) -> list[int]:
    """RSS (MiB) of one process before and after each of `count` uploads."""
    requests = [request_for(account, path, f"series/{n}.cap").model_dump(mode="json") for n in range(count)]
    done = subprocess.run([sys.executable, "-c", SERIES], input=json.dumps(requests), capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--series", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    azurite = Azurite(workdir)
    try:
        azurite.start()
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container(CONTAINER)
        account = StorageAccount(connectionString=azurite.connection_string)
        path = workdir / "capture.cap"
        sha256 = make_file(path, args.mib)
        agent, plain = [], []
        for run in range(args.runs):  # each goes first in turn
            steps = [lambda: plain.append(sdk_upload(azurite.connection_string, path, f"plain/{run}.cap")),
                     lambda: agent.append(agent_upload(request_for(account, path, f"agent/{run}.cap")))]
            for step in steps[::1 if run % 2 == 0 else -1]:
                step()
            stored = service.get_blob_client(CONTAINER, f"agent/{run}.cap").get_blob_properties()
            assert stored.size == path.stat().st_size and stored.metadata["sha256"] == sha256
        series = rss_series(account, path, args.series) if args.series else []
    finally:
        azurite.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    mib = args.mib
    speeds = {"agent": [mib / t for t in agent], "plain": [mib / t for t in plain]}
    ratios = [p / a for a, p in zip(agent, plain)]
    options = ", ".join(f"{key}={value}" for key, value in {**REFERENCE, **CLIENT_OPTIONS}.items())
    print(f"upload of a {mib} MiB capture to Azurite, {args.runs} runs alternating, median (min-max):")
    for name, label in (("agent", "agent (SAS; MD5 per block; SHA-256 computed and stored as metadata)"),
                        ("plain", f"reference: the SDK's upload_blob({options})")):
        values = speeds[name]
        print(f"  {label}\n    {statistics.median(values):7.1f} MiB/s ({min(values):.1f}-{max(values):.1f})")
    print(f"  agent / reference: {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    if series:
        print(f"agent RSS over {args.series} consecutive {mib} MiB uploads (MiB, before the first, then after each): "
              f"{series}; growth from the 2nd to the last upload: {series[-1] - series[2]:+d} MiB")
    print(json.dumps({"agent_mib_s": speeds["agent"], "plain_mib_s": speeds["plain"], "rss_mib": series}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
