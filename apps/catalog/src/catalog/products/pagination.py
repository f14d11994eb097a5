"""Keyset (cursor) pagination: each page starts strictly after the last row of the previous one,
so rows inserted or deleted meanwhile never make a row appear twice or go missing."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from catalog.errors import InvalidCursor

# API sort name -> model column.
SORT_COLUMNS = {"name": "name", "price": "price_units", "created_at": "created_at"}


def encode_cursor(sort: str, value: Any, row_id: Any) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "id": str(row_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    """The (value, row id) a cursor holds, each of the type its column needs: a cursor is client
    input, so one made by hand must be a 400, never a database error."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, row_id = data["v"], data["id"]
        if data["s"] != sort:
            raise InvalidCursor(f"This cursor was made for sort={data['s']}; keep the same sort while paging")
        value = _CURSOR_VALUES[SORT_COLUMNS.get(sort.lstrip("-"), sort)](value)
        if not isinstance(row_id, str):
            raise TypeError
    except InvalidCursor:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidCursor("Use next_cursor exactly as a previous page returned it") from None
    return value, row_id


def _text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise TypeError
    return value


def _integer(value: Any) -> int:
    # bool is an int to Python, and the columns are BIGINT at most.
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise TypeError
    return value


def _timestamp(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:  # the column holds UTC instants; next_cursor always says so
        raise TypeError
    return parsed


# Column (or the movement ledger's `id`) -> how its cursor value is checked and read.
_CURSOR_VALUES: dict[str, Any] = {"name": _text, "price_units": _integer, "created_at": _timestamp, "id": _integer}


def keyset(sort: str, cursor: str | None) -> tuple[str, bool, tuple[Any, str] | None]:
    """For a sort such as `-price`: its column, whether it descends, and the (column value, row id)
    the page starts after, None for the first page."""
    descending = sort.startswith("-")
    column = SORT_COLUMNS[sort.lstrip("-")]
    if cursor is None:
        return column, descending, None
    value, row_id = decode_cursor(cursor, sort)
    try:
        UUID(row_id)
    except ValueError:
        raise InvalidCursor("Use next_cursor exactly as a previous page returned it") from None
    return column, descending, (value, row_id)
