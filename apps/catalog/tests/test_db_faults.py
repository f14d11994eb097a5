"""Which errors mean "the database is unavailable" (503 + Retry-After), however they are wrapped."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

from catalog.db_engines.faults import is_database_down


def raised_while_handling(outer: Exception, inner: Exception) -> Exception:
    """`outer` as Python leaves it when raised in an `except` block for `inner` (Tortoise's wrapping)."""
    try:
        try:
            raise inner
        except Exception:
            raise outer  # noqa: B904 - the implicit __context__ is what is being tested
    except Exception as exc:
        return exc


def _bug_while_handling(fault: Exception) -> Exception:
    return raised_while_handling(KeyError("bug"), fault)


def _sqlite_busy_translated() -> Exception:
    """SQLite's busy error as Tortoise translates it."""
    return raised_while_handling(OperationalError("database is locked"), sqlite3.OperationalError("database is locked"))


def _raised_from(outer: Exception, cause: Exception) -> Exception:
    """`outer` raised `from cause`: an explicit chain, read whatever the outer error is."""
    try:
        raise outer from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "down"),
    [
        pytest.param(TimeoutError(), True, id="deadline"),
        pytest.param(ConnectionRefusedError(), True, id="refused"),
        pytest.param(
            asyncpg.InterfaceError("another operation is in progress"),
            True,
            id="busy-connection",
        ),
        pytest.param(asyncpg.ConnectionDoesNotExistError("connection was closed"), True, id="closed-mid-statement"),
        pytest.param(asyncpg.AdminShutdownError("terminating connection"), True, id="admin-shutdown"),
        pytest.param(asyncpg.CrashShutdownError("crash"), True, id="crash-shutdown"),
        pytest.param(asyncpg.CannotConnectNowError("starting up"), True, id="starting-up"),
        pytest.param(asyncpg.TooManyConnectionsError("too many"), True, id="too-many-connections"),
        pytest.param(
            raised_while_handling(TransactionManagementError("rollback failed"), asyncpg.InterfaceError("closed")),
            True,
            id="wrapped-by-the-orm",
        ),
        pytest.param(
            raised_while_handling(
                OperationalError("database is locked"), sqlite3.OperationalError("database is locked")
            ),
            True,
            id="sqlite-busy",
        ),
        pytest.param(
            raised_while_handling(
                OperationalError("no such table"), sqlite3.OperationalError("no such table: products")
            ),
            False,
            id="sqlite-schema-error",
        ),
        # A bug in an except block that was handling a fault is a fault of its own.
        pytest.param(_bug_while_handling(asyncpg.InterfaceError("closed")), False, id="bug-handling-a-fault"),
        pytest.param(_bug_while_handling(_sqlite_busy_translated()), False, id="bug-handling-a-translated-fault"),
        pytest.param(
            _raised_from(RuntimeError("the product could not be read"), TimeoutError()), True, id="raised-from-a-fault"
        ),
        pytest.param(IntegrityError("duplicate key"), False, id="constraint"),
        pytest.param(asyncpg.UniqueViolationError("duplicate key"), False, id="unique-violation"),
        pytest.param(ValueError("bug"), False, id="plain-bug"),
    ],
)
def test_is_database_down(error: Exception, down: bool) -> None:
    assert is_database_down(error) is down
