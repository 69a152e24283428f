"""Registry at fleet size: GET list of one watcher's captures at 1k, 10k and 100k captures on
SQLite and on PostgreSQL, as a client gets it: from `packetwatch serve` (uvicorn) over a
socket, on a kept-alive connection, the whole answer read; a `$top=100` page, GET one capture
and the alert dedupe lookup beside it. The registry is set up with its bulk path
(Registry.import_captures). Reference: the bare SELECT of the same rows in the same run.
p50 and p99 (with min-max) of several requests; nothing is left in the temp dir.
Usage: python -m bench.registry_list [--sizes 1000,10000,100000] [--runs 20] [--databases sqlite,postgresql]
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
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import select

from functions.api import create_app
from lab.databases import new_postgres_database
from lab.stack import Stack, free_port
from shared.arm import PacketCaptureParameters, PcStatus
from shared.config import Settings
from shared.registry import Registry
from shared.registry_schema import captures
from shared.resource_ids import CaptureId, VirtualMachineId

SUBSCRIPTION = "00000000-0000-0000-0000-0000000bench"


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/registry-{uuid.uuid4().hex[:6]}.db"
        return
    with new_postgres_database("pw_bench") as url:
        yield url


def fill(registry: Registry, watcher: str, size: int,
         planned: Callable[[PacketCaptureParameters, datetime], str | None]) -> CaptureId:
    """`size` captures in one watcher (and as many again in another, so the list must select),
    a tenth of them to a storage account (their blob URLs `planned` as create plans them): what
    a busy watcher holds."""
    began = datetime(2026, 1, 1, tzinfo=timezone.utc)
    entries = []
    for other in (False, True):
        for n in range(size):
            vm = VirtualMachineId(SUBSCRIPTION, "bench-rg", f"vm-{n % 10_000}")
            capture = CaptureId(SUBSCRIPTION, "bench-rg", f"{watcher}-other" if other else watcher, f"pc-{n}")
            location = {"storageId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/bench-rg/providers/"
                                     "Microsoft.Storage/storageAccounts/devstoreaccount1"} if n % 10 == 0 \
                else {"filePath": f"/var/captures/pc-{n}.cap"}
            parameters = PacketCaptureParameters.model_validate(
                {"target": vm.arm_id, "storageLocation": location, "timeLimitInSeconds": 600,
                 "filters": [{"protocol": "TCP", "localPort": "443"}]})
            entries.append((capture, parameters, began + timedelta(seconds=n), PcStatus.STOPPED))
    registry.import_captures(entries, planned)
    return CaptureId(SUBSCRIPTION, "bench-rg", watcher, f"pc-{size // 2}")


def timed(action: Callable[[], object], runs: int) -> list[float]:
    action()  # warm
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return times


def measure(kind: str, size: int, runs: int, workdir: Path) -> dict[str, list[float]]:
    storage = workdir / "storage.yaml"
    storage.write_text("accounts:\n  devstoreaccount1:\n    connectionString: \"DefaultEndpointsProtocol=http;"
                       "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVE"
                       "rCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;\"\n")
    with database(kind, workdir) as url:
        registry = Registry.from_url(url)
        stack = Stack(Settings().broker_url, url, workdir, extra_env={
            "PACKETWATCH_STORAGE_CONFIG": str(storage), "PACKETWATCH_QUEUE_INTAKE": "false",
            "PACKETWATCH_LOG_LEVEL": "WARNING"})
        planner = create_app(Settings(database_url=url, storage_config=str(storage))).state.service
        one = fill(registry, "bench-nw", size, planner.planned_path)
        planner.registry.engine.dispose()
        watcher = one.watcher_path
        query = select(captures).where(captures.c.watcher_key == watcher.lower()).order_by(captures.c.created_at,
                                                                                         captures.c.key)

        def bare_select() -> None:
            with registry.engine.connect() as conn:
                conn.execute(query).all()

        api = stack.start_server("api", free_port())
        try:
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {stack.token}"}, timeout=60) as client:
                def listed() -> bytes:  # the whole answer read off the socket; the client's parsing is not timed
                    answer = client.get(f"{watcher}/packetCaptures?api-version=2026-01-01")
                    assert answer.status_code == 200, answer.text[:200]
                    return answer.content

                assert len(json.loads(listed())["value"]) == size

                def paged() -> None:
                    answer = client.get(f"{watcher}/packetCaptures?api-version=2026-01-01&$top=100")
                    assert answer.status_code == 200 and len(answer.json()["value"]) == min(100, size)

                def got() -> None:
                    assert client.get(f"{one.arm_id}?api-version=2026-01-01").status_code == 200

                result = {"list": timed(listed, runs), "select": timed(bare_select, runs),
                          "page": timed(paged, runs), "get": timed(got, runs),
                          "dedupe": timed(lambda: registry.alert_capture_status("vm-key", "rule-key"), runs)}
        finally:
            stack.stop("api")
            registry.engine.dispose()
        return result


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="packetwatch-bench-"))
    figures = {}
    try:
        for kind in args.databases.split(","):
            for size in [int(s) for s in args.sizes.split(",")]:
                figures[f"{kind}/{size}"] = measure(kind, size, args.runs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"registry list: GET list of one watcher (the ARM list: every capture) from `packetwatch serve` over a "
          f"socket, {args.runs} requests each, ms p50 / p99 (min-max); reference: the bare SELECT of the same rows")
    for key, result in figures.items():
        line = "  ".join(f"{name} {statistics.median(v):7.1f} / {_p99(v):7.1f} ({min(v):.1f}-{max(v):.1f})"
                         for name, v in result.items())
        ratio = statistics.median(result["list"]) / statistics.median(result["select"])
        print(f"  {key:18} {line}  list/select {ratio:.1f}x")
    print(json.dumps({key: {name: {"p50": statistics.median(v), "p99": _p99(v)} for name, v in result.items()}
                      for key, result in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
