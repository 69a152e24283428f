"""The registry's schema, versioned with Alembic (shared/migrations).

A new, empty database gets the whole schema and is stamped at the newest revision. A
database that is behind — made by an earlier release — is refused with the command that
upgrades it: `packetwatch db upgrade`. One made before migrations existed (0.1.0 created
its tables directly) counts as the baseline revision.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from shared.errors import PacketWatchError
from shared.registry_schema import metadata

BASELINE = "0001"
MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "packetwatch db upgrade"
LOCK_KEY = 0x70776D67  # PostgreSQL advisory lock of the registry's schema changes


class RegistryBehind(PacketWatchError):
    """The database's schema is older than this release's."""

    status = 503
    code = "RegistryNeedsUpgrade"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config(None)).get_current_head()  # type: ignore[arg-type,return-value]


def revision(connection: Connection) -> str | None:
    """The schema revision of the database; None when it holds no PacketWatch table."""
    tables = set(inspect(connection).get_table_names())
    if not tables & set(metadata.tables):
        return None
    return MigrationContext.configure(connection).get_current_revision() or BASELINE


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other process preparing the same database runs beside: the
    processes of a stack start together on a new database, and only one may create it (a
    half-made schema would look like an old one to the others)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with engine.begin() as connection:
                yield connection
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield connection


def prepare(engine: Engine, url_for_people: str) -> None:
    """Create the schema in an empty database; refuse one that is behind (RegistryBehind)."""
    with _one_at_a_time(engine) as connection:
        found = revision(connection)
        if found is None:
            metadata.create_all(connection)
            command.stamp(_config(connection), "head")
            return
    newest = head()
    if found != newest:
        raise RegistryBehind(f"the registry at {url_for_people} has schema revision {found}; this release needs "
                             f"{newest}: run `{UPGRADE_COMMAND}` (with the same PACKETWATCH_DATABASE_URL)")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (revision before, after)."""
    with _one_at_a_time(engine) as connection:
        before = revision(connection)
        config = _config(connection)
        if before is None:
            metadata.create_all(connection)
            command.stamp(config, "head")
        else:
            if MigrationContext.configure(connection).get_current_revision() is None:
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
    return before, head()
