"""Keyset (cursor) pagination: each page starts strictly after the last row of the previous one,
so rows inserted or deleted meanwhile never make a row appear twice or go missing."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from catalog.errors import InvalidCursor

# API sort name -> model column.
SORT_COLUMNS = {"name": "name", "price": "price_units", "created_at": "created_at"}


def encode_cursor(sort: str, value: Any, row_id: Any) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "id": str(row_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, row_id = data["v"], data["id"]
        if data["s"] != sort:
            raise InvalidCursor(f"This cursor was made for sort={data['s']}; keep the same sort while paging")
        if SORT_COLUMNS.get(sort.lstrip("-")) == "created_at":
            value = datetime.fromisoformat(value)
        if not isinstance(row_id, str):
            raise TypeError
    except InvalidCursor:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidCursor("Use next_cursor exactly as a previous page returned it") from None
    return value, row_id


def order_and_after(sort: str, cursor: str | None) -> tuple[list[str], Q | None]:
    """ORDER BY terms and the 'after the cursor' condition for a sort such as `-price`."""
    descending = sort.startswith("-")
    column = SORT_COLUMNS[sort.lstrip("-")]
    sign = "-" if descending else ""
    order = [f"{sign}{column}", f"{sign}id"]
    if cursor is None:
        return order, None
    value, row_id = decode_cursor(cursor, sort)
    op, bound = ("lt", "lte") if descending else ("gt", "gte")
    # The redundant `column >= value` (<= descending) is what lets the (column, id) index start at the
    # cursor: with the OR alone the database walks every earlier row (2 s for a deep page of 1M rows).
    after = Q(**{f"{column}__{bound}": value}) & (
        Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"id__{op}": row_id})
    )
    return order, after
