"""Tortoise's SQLite client with a span per statement."""

from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)

from catalog.observability.db_spans import TracedStatements


class TracedSqliteTransaction(TracedStatements, SqliteTransactionWrapper):
    pass


class TracedSqliteClient(TracedStatements, SqliteClient):
    def _in_transaction(self) -> SqliteTransactionContext:
        return SqliteTransactionContext(TracedSqliteTransaction(self), self._lock)


client_class = TracedSqliteClient
