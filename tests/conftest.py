from collections.abc import Iterator

import pytest

from lab.databases import new_postgres_database
from lab.stack import temporary_vhost
from shared.registry import Registry


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this run's own on the real broker."""
    with temporary_vhost() as url:
        yield url


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
