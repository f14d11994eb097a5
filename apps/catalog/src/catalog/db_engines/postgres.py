"""Tortoise's asyncpg client with a span per statement, and every wait on the database bounded:
taking a pooled connection (`acquire_timeout`), each statement (asyncpg's `command_timeout`) and
connecting (`timeout`), so a database that stops answering costs a request a few seconds and a
503, never the whole request timeout. A connection that saw a fault is closed, not pooled again."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import PoolConnectionWrapper, TransactionalDBClient, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import DBConnectionError

from catalog.db_engines.faults import BROKEN_CONNECTION_ERRORS
from catalog.observability.db_spans import TracedStatements


def is_broken(connection: Any, exc: BaseException | None) -> bool:
    """`exc` may have left the connection mid-statement, cancelling or closed: nobody may reuse it.
    A cancelled task (a client that hung up, a deadline) breaks it only when it interrupted a
    statement, which asyncpg is then cancelling on the server (the same check its pool makes);
    between statements the connection is as good as any, and closing it would cost a reconnect."""
    if isinstance(exc, asyncio.CancelledError):
        return connection.is_closed() or connection._protocol._is_cancelling()
    return isinstance(exc, BROKEN_CONNECTION_ERRORS)


async def _release(pool: asyncpg.Pool, connection: Any, exc: BaseException | None) -> None:
    """Give the connection back, or close it first when it is broken: asyncpg's release would
    otherwise wait for the server to confirm the cancellation, which a frozen server never does."""
    if is_broken(connection, exc):
        connection.terminate()
    await pool.release(connection)


class BoundedPoolConnectionWrapper(PoolConnectionWrapper):
    """One statement's connection: taken within `acquire_timeout`, closed after a fault."""

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.connection = await cast(TracedPostgresClient, self.client).take_connection()
        return self.connection

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await _release(self.client._pool, self.connection, exc)


class TracedPostgresTransaction(TracedStatements, TransactionWrapper):
    pass


class BoundedTransactionContext(TransactionContextPooled):
    """A transaction's connection: taken within `acquire_timeout`; given back whatever happens —
    also when the task is cancelled inside __aenter__ (Sanic cancels the handler of a client that
    disconnects), where Tortoise's own context keeps it, so after `maxsize` such requests every
    query of the worker waits forever — and closed after a fault instead of rolled back."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self.ensure_connection()
        parent = cast(TracedPostgresClient, self.client._parent)
        self.client._connection = await parent.take_connection()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException as exc:
            get_connections().reset(self.token)
            await _release(parent._pool, self.client._connection, exc)
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if not is_broken(self.client._connection, exc):
            await super().__aexit__(exc_type, exc, tb)
            return
        # No ROLLBACK on a connection in an unknown state: closing it ends the transaction on the server.
        try:
            await _release(self.client._parent._pool, self.client._connection, exc)
        finally:
            get_connections().reset(self.token)


class TracedPostgresClient(TracedStatements, AsyncpgDBClient):
    def __init__(self, *args: Any, acquire_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    async def take_connection(self) -> Any:
        """A pooled connection within `acquire_timeout` (ensure_connection opened the pool)."""
        if self._pool is None:
            raise DBConnectionError("the connection pool is not open")
        return await self._pool.acquire(timeout=self.acquire_timeout)

    def acquire_connection(self) -> PoolConnectionWrapper:
        return BoundedPoolConnectionWrapper(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContextPooled:
        return BoundedTransactionContext(TracedPostgresTransaction(self), self._pool_init_lock)


client_class = TracedPostgresClient
