"""Schema changes go through Alembic: the migrations build exactly the declared schema, a
registry made by the release before migrations is refused until `packetwatch db upgrade`,
and the upgrade keeps its captures (real SQLite and PostgreSQL)."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from shared.registry import Registry
from shared.registry_migrations import RegistryBehind, _config, head
from shared.registry_schema import metadata
from shared.resource_ids import CaptureId

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = CaptureId("sub-a", "rg", "nw", "kept")
PARAMETERS = {"target": "/subscriptions/sub-a/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
              "bytesToCapturePerPacket": 0, "totalBytesPerSession": 1073741824, "timeLimitInSeconds": 60,
              "storageLocation": {"filePath": "/var/captures/kept.cap"}, "filters": []}


def _previous_release(url: str) -> None:
    """A registry as 0.1.0 left it: its tables (the baseline revision), no version table, data."""
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text(
            "INSERT INTO packet_captures (key, arm_id, watcher_key, name, target_key, parameters, status, errors, "
            "etag, run_id, stop_requested, created_at, stop_reason, capture_start_time) VALUES (:key, :arm_id, "
            ":watcher, 'kept', :target, :parameters, 'Stopped', '[]', 'W/\"1\"', 'run-1', 0, :at, 'TimeExceeded', :at)"),
            dict(key=CAPTURE.key, arm_id=CAPTURE.arm_id, watcher=CAPTURE.watcher_path.lower(),
                 target=PARAMETERS["target"].lower(), parameters=json.dumps(PARAMETERS),
                 at=datetime(2026, 11, 1, tzinfo=timezone.utc)))
        conn.execute(text("INSERT INTO agents (vm_key, vm_id, version, hostname, last_seen, running) VALUES "
                          "(:key, :vm, '0.1.0', 'vm1', :at, '[]')"),
                     dict(key=PARAMETERS["target"].lower(), vm=PARAMETERS["target"],
                          at=datetime(2026, 11, 1, tzinfo=timezone.utc)))
    engine.dispose()


def test_the_migrations_build_exactly_the_declared_schema(empty_database_url):
    engine = create_engine(empty_database_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_a_new_database_is_created_at_the_newest_revision(empty_database_url):
    registry = Registry.from_url(empty_database_url)
    with registry.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head()
    registry.engine.dispose()


def test_a_registry_of_the_previous_release_is_refused_then_upgraded_keeping_its_captures(empty_database_url):
    _previous_release(empty_database_url)
    with pytest.raises(RegistryBehind, match="packetwatch db upgrade"):
        Registry.from_url(empty_database_url)
    env = {**os.environ, "PACKETWATCH_DATABASE_URL": empty_database_url}
    refused = subprocess.run([sys.executable, "-m", "cli.main", "control", "run"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=ROOT)
    assert refused.returncode == 1 and "run `packetwatch db upgrade`" in refused.stderr
    upgraded = subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], env=env, capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"schema revision 0001 -> {head()}" in upgraded.stdout
    registry = Registry.from_url(empty_database_url)
    kept = registry.get(CAPTURE)
    assert (kept.status.value, kept.stop_reason, kept.parameters.time_limit_in_seconds) == ("Stopped",
                                                                                           "TimeExceeded", 60)
    [agent] = registry.list_agents()
    assert (agent.version, agent.interface) == ("0.1.0", None)
    again = subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], env=env, capture_output=True,
                           text=True, timeout=60, cwd=ROOT)
    assert "already at schema revision" in again.stdout
    registry.engine.dispose()


def test_processes_starting_together_on_a_new_database_all_find_it_ready(empty_database_url):
    starting = [subprocess.Popen([sys.executable, "-c", "import sys; from shared.registry import Registry; "
                                  "Registry.from_url(sys.argv[1])", empty_database_url], cwd=ROOT,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in starting:
        assert process.wait(120) == 0, process.stderr.read()
