"""Tortoise's asyncpg client with a span per statement."""

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContextPooled

from catalog.observability.db_spans import TracedStatements


class TracedPostgresTransaction(TracedStatements, TransactionWrapper):
    pass


class TracedPostgresClient(TracedStatements, AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContextPooled:
        return TransactionContextPooled(TracedPostgresTransaction(self), self._pool_init_lock)


client_class = TracedPostgresClient
