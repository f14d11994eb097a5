"""Tortoise's SQLite client with a span per statement."""

import asyncio
import contextlib
from typing import Any

from tortoise.backends.base.client import ConnectionWrapper, TransactionalDBClient
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections

from catalog.observability.db_spans import TracedStatements


class TracedSqliteTransaction(TracedStatements, SqliteTransactionWrapper):
    pass


class CancelSafeSqliteTransactionContext(SqliteTransactionContext):
    """Tortoise's context keeps the worker's connection lock when the task is cancelled inside
    __aenter__ (Sanic cancels the handler of a client that disconnects), since __aexit__ never
    runs: every later query of that worker then waits forever. Release it instead."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        token = None
        try:
            await self.ensure_connection()
            token = self.token = get_connections().set(self.connection_name, self.connection)
            await self.connection.begin()
        except BaseException:
            try:
                if token is not None:
                    get_connections().reset(token)
                if self.connection._connection is not None:
                    # Ends a BEGIN that ran before the cancellation; a no-op otherwise.
                    await asyncio.shield(self.connection._connection.rollback())
            finally:
                self._trxlock.release()
            raise
        return self.connection


class CancelSafeConnectionWrapper(ConnectionWrapper):
    """Tortoise's wrapper keeps the worker's connection lock when opening the connection fails or
    is cancelled inside __aenter__ (a readiness check's deadline during a slow first connect),
    since __aexit__ never runs: every later query of that worker then waits forever, and the pod
    never becomes ready. Release it instead, so the next query opens the connection again."""

    async def __aenter__(self) -> Any:
        await self._lock.acquire()
        try:
            await self.ensure_connection()
        except BaseException:
            self._lock.release()
            raise
        return self.connection


class TracedSqliteClient(TracedStatements, SqliteClient):
    def _in_transaction(self) -> SqliteTransactionContext:
        return CancelSafeSqliteTransactionContext(TracedSqliteTransaction(self), self._lock)

    def acquire_connection(self) -> ConnectionWrapper:
        return CancelSafeConnectionWrapper(self._lock, self)

    async def create_connection(self, with_db: bool) -> None:
        try:
            await super().create_connection(with_db)
        except BaseException:
            # Tortoise keeps the connection before its PRAGMAs ran: one used after a failure would
            # lack foreign keys, WAL and the busy timeout. Close it; the next query starts over.
            half_open, self._connection = self._connection, None
            if half_open is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(half_open.close())
            raise


client_class = TracedSqliteClient
