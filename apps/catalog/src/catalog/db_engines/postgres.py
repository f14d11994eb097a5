"""Tortoise's asyncpg client with a span per statement."""

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContextPooled
from tortoise.connection import get_connections

from catalog.observability.db_spans import TracedStatements


class TracedPostgresTransaction(TracedStatements, TransactionWrapper):
    pass


class CancelSafeTransactionContext(TransactionContextPooled):
    """Tortoise's context keeps its pooled connection when the task is cancelled inside __aenter__
    (Sanic cancels the handler of a client that disconnects), since __aexit__ never runs: after
    `maxsize` such requests every query of the worker waits forever. Give it back instead."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self.ensure_connection()
        self.client._connection = await self.client._parent._pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            get_connections().reset(self.token)
            # asyncpg rolls back a transaction the BEGIN may have opened, and shields the release.
            await self.client._parent._pool.release(self.client._connection)
            raise
        return self.client


class TracedPostgresClient(TracedStatements, AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContextPooled:
        return CancelSafeTransactionContext(TracedPostgresTransaction(self), self._pool_init_lock)


client_class = TracedPostgresClient
