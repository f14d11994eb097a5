"""The PostgreSQL engine closes a connection only when a cancelled task left it broken: a client
that hangs up mid-statement costs a reconnect (the statement may still run on the server), one
that hangs up between statements gives its connection back to the pool for the next request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tortoise import Tortoise, connections

from catalog.db import tortoise_config
from tests.support.api import test_settings
from tests.support.postgres import PostgresServer, admin_url

pytestmark = pytest.mark.pg


@pytest.fixture
async def database(postgres: PostgresServer | str) -> AsyncIterator[Any]:
    """The engine on the server's own database, with a pool of one: the next query's backend pid
    tells whether the connection survived."""
    config = tortoise_config(test_settings(admin_url(postgres)))
    config["connections"]["default"]["credentials"] |= {"minsize": 1, "maxsize": 1}
    await Tortoise.init(config=config)
    try:
        yield connections.get("default")
    finally:
        await Tortoise.close_connections()


async def _between_statements(connection: Any, started: asyncio.Event) -> None:
    started.set()
    await asyncio.sleep(30)  # the handler awaits something else: a cache, another service


async def _mid_statement(connection: Any, started: asyncio.Event) -> None:
    started.set()
    await connection.execute_query("SELECT pg_sleep(30)")


async def _backend_pid(connection: Any) -> int:
    return (await connection.execute_query_dict("SELECT pg_backend_pid() AS pid"))[0]["pid"]


@pytest.mark.parametrize(
    ("scope", "work", "reconnected"),
    [
        pytest.param("statement", _between_statements, False, id="statement-between"),
        pytest.param("statement", _mid_statement, True, id="statement-mid"),
        pytest.param("transaction", _between_statements, False, id="transaction-between"),
        pytest.param("transaction", _mid_statement, True, id="transaction-mid"),
    ],
)
async def test_cancelled_task_closes_its_connection_only_mid_statement(
    database: Any,
    scope: str,
    work: Callable[[Any, asyncio.Event], Awaitable[None]],
    reconnected: bool,
) -> None:
    before = await _backend_pid(database)
    started = asyncio.Event()

    async def hung_up_request() -> None:
        if scope == "statement":
            async with database.acquire_connection() as raw:
                await work(_Raw(raw), started)
        else:
            async with database._in_transaction() as transaction:
                await transaction.execute_query("SELECT 1")
                await work(transaction, started)

    task = asyncio.create_task(hung_up_request())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.2)  # the statement reaches the server
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await asyncio.wait_for(_backend_pid(database), 10)

    assert (after != before) is reconnected


class _Raw:
    """A pooled asyncpg connection seen through the one method the work functions call."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    async def execute_query(self, sql: str) -> None:
        await self._raw.execute(sql)
