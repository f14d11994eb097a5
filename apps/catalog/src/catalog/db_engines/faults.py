"""What a database fault is: the errors that mean the database is gone or not answering (503 +
Retry-After, never 500), and which of them leave a connection in a state nobody may reuse."""

from __future__ import annotations

import sqlite3

import asyncpg
from tortoise.exceptions import BaseORMException, DBConnectionError

# The database cannot be reached or did not answer in time. OperatorInterventionError covers an
# admin or crash shutdown, "cannot connect now" and a statement the server cancelled.
DATABASE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    DBConnectionError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

# SQLite's word for "another writer held the file longer than busy_timeout": the database is busy.
_SQLITE_BUSY = ("database is locked", "database table is locked")

# After one of these the connection may still be mid-statement, cancelling, or closed by the
# server: given back to the pool it would make the next user wait for the cancellation ("another
# operation is in progress") or fail. It is closed instead. (A cancelled task breaks it only when
# it interrupted a statement: db_engines.postgres.is_broken.)
BROKEN_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *DATABASE_DOWN_ERRORS,
    OSError,
)


def is_database_down(exc: BaseException) -> bool:
    """The error, or one it was raised from, means the database is unavailable. An error is read
    through what it was raised from (`raise ... from`) and, when it is the ORM's own, through what
    it was raised while handling: Tortoise translates driver errors that way, and a rollback can
    fail on a connection already lost. Any other error raised while handling a database fault is
    a fault of its own (a bug in an except block is a 500, not a 503)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DATABASE_DOWN_ERRORS):
            return True
        if isinstance(current, sqlite3.OperationalError) and str(current) in _SQLITE_BUSY:
            return True
        seen.add(id(current))
        current = current.__cause__ or (current.__context__ if isinstance(current, BaseORMException) else None)
    return False
