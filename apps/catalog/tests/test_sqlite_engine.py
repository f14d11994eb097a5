"""The SQLite engine recovers from a first connection that fails or is cancelled (a readiness
check's deadline under load): the worker's connection lock is released and the next query opens a
complete connection, instead of every later query waiting forever."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise.exceptions import OperationalError

from catalog.db_engines.sqlite import TracedSqliteClient

# Long enough that a blocked first connect outlives the caller's deadline, as under load.
BUSY_TIMEOUT_MS = 3000


@pytest.fixture
async def make_client() -> AsyncIterator:
    clients: list[TracedSqliteClient] = []

    def make(path: Path) -> TracedSqliteClient:
        client = TracedSqliteClient(file_path=str(path), connection_name="default", busy_timeout=BUSY_TIMEOUT_MS)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_sqlite_first_connection_that_fails_is_retried(tmp_path: Path, make_client):
    database = tmp_path / "not-yet" / "catalog.sqlite3"
    client = make_client(database)

    with pytest.raises(OperationalError, match="unable to open database file"):
        await client.execute_query("SELECT 1")
    database.parent.mkdir()

    assert await asyncio.wait_for(client.execute_query_dict("PRAGMA foreign_keys"), 5) == [{"foreign_keys": 1}]


async def test_sqlite_first_connection_cancelled_by_a_deadline_is_retried(tmp_path: Path, make_client):
    database = tmp_path / "catalog.sqlite3"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # switching to WAL waits for this lock: the connect is slow
    client = make_client(database)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.execute_query("SELECT 1"), 0.3)
    holder.execute("ROLLBACK")
    holder.close()

    pragmas = await asyncio.wait_for(client.execute_query_dict("PRAGMA journal_mode"), BUSY_TIMEOUT_MS / 1000 + 5)
    assert pragmas == [{"journal_mode": "wal"}]
    assert await client.execute_query_dict("PRAGMA foreign_keys") == [{"foreign_keys": 1}]
