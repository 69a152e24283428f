import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from lab.stack import temporary_vhost
from shared.registry import Registry

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this run's own on the real broker."""
    with temporary_vhost() as url:
        yield url


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty database on the real PostgreSQL, dropped afterwards: its URL."""
    name = f"packetwatch_test_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own on the real PostgreSQL, shared by the tests of the run."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def registry(database_url) -> Iterator[Registry]:
    registry = Registry.from_url(database_url)
    yield registry
    registry.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A database of its own, empty: SQLite, or a new database on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/registry.db"
        return
    with new_postgres_database() as url:
        yield url
