"""Tortoise's SQLite client with a span per statement."""

import asyncio

from tortoise.backends.base.client import TransactionalDBClient
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


class TracedSqliteClient(TracedStatements, SqliteClient):
    def _in_transaction(self) -> SqliteTransactionContext:
        return CancelSafeSqliteTransactionContext(TracedSqliteTransaction(self), self._lock)


client_class = TracedSqliteClient
