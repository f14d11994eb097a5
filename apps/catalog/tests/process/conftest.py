"""Fixtures of the process tier: servers killed at teardown whatever happened, databases, receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.otlp import OtlpReceiver
from tests.support.postgres import PostgresServer, find_bindir, fresh_pg_database, throwaway_server
from tests.support.process_tier import PostgresRowLock, SqliteWriteLock, migrated_sqlite_url, server_env
from tests.support.server import ServerProcess


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `catalog serve` (ready to answer); every server is killed at teardown, pass or fail."""
    servers: list[ServerProcess] = []

    def start(database_url: str, *, workers: int = 1, **values: str) -> ServerProcess:
        server = ServerProcess(
            server_env(database_url, tmp_path / f"metrics-{len(servers)}", **values), workers=workers
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest.fixture
def pg_url(postgres: PostgresServer | str, pg_template: str) -> str:
    return fresh_pg_database(postgres, pg_template)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, so stopping it leaves the session's server alone."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    with throwaway_server(bindir, prefix="catalog-pg-outage-") as server:
        yield server


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, SqliteWriteLock | PostgresRowLock]]:
    """(database URL, a lock on it that the test holds and releases; released at teardown anyway)."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        lock: SqliteWriteLock | PostgresRowLock = SqliteWriteLock(url)
    else:
        url = request.getfixturevalue("pg_url")
        lock = PostgresRowLock(url)
    try:
        yield url, lock
    finally:
        lock.release()
