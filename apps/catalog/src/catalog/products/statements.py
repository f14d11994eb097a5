"""The hand-written SQL of the product requests `make bench` loads: on these, the ORM's generic
path (query building, the select_related join, a model instance per row and per category) cost
more CPU than the database did. Each statement is built once per dialect and shape; values are
bound, never formatted in, and go through the model's own field conversions."""

from __future__ import annotations

import functools

from catalog.products.models import Product

# Text search: a LIKE pattern in any of these columns, matched as Tortoise's `icontains` matches.
_SEARCH = " OR ".join(
    f"UPPER(CAST(p.{c} AS VARCHAR)) LIKE UPPER({{0}}) ESCAPE '\\'" for c in ("sku", "name", "description")
)
# A product page's filters, in the order their conditions are written; `{0}` is the bound value.
PAGE_FILTERS = {
    # By id (one lookup in a subquery), so the (category_id, name, id) index both filters and orders:
    # through the join, PostgreSQL scanned the name index and skipped the other categories' rows.
    "category": "p.category_id = (SELECT id FROM categories WHERE slug = {0})",
    "status": "p.status = {0}",
    "min_price": "p.price_units >= {0}",
    "max_price": "p.price_units <= {0}",
    "q": f"({_SEARCH})",
}
# After the cursor's (value, id) in the sort's direction. The redundant `column >= value` (<= descending)
# is what lets the (column, id) index start at the cursor: with the OR alone the database walks every
# earlier row (2 s for a deep page of 1M rows).
_AFTER = (
    "p.{column} {or_equal} {value} AND (p.{column} {beyond} {value} OR (p.{column} = {value} AND p.id {beyond} {id}))"
)


def placeholder(dialect: str, number: int) -> str:
    """The `number`th bound value (from 1); numbered on SQLite too, so a value used twice is bound once."""
    return f"${number}" if dialect == "postgres" else f"?{number}"


def _columns() -> str:
    # Read when a statement is first built, after Tortoise.init has added the foreign key column.
    return ", ".join(f"p.{column}" for column in sorted(Product._meta.db_fields))


@functools.cache
def get_by_id(dialect: str) -> str:
    """One product and its category's slug (`category_slug`)."""
    return (
        f"SELECT {_columns()}, c.slug AS category_slug FROM products p"  # noqa: S608  # nosec B608  # model column names
        f" JOIN categories c ON c.id = p.category_id WHERE p.id = {placeholder(dialect, 1)}"
    )


@functools.cache
def page(dialect: str, filters: tuple[str, ...], column: str, descending: bool, after: bool) -> str:
    """A page in (column, id) order, each row with its category's slug (`category_slug`). Bound
    values: one per filter, in PAGE_FILTERS order; then the cursor's column value and row id if
    `after`; then the row limit."""
    numbers = (placeholder(dialect, number) for number in range(1, len(filters) + 4))
    conditions = [PAGE_FILTERS[name].format(next(numbers)) for name in PAGE_FILTERS if name in filters]
    beyond, or_equal, direction = ("<", "<=", " DESC") if descending else (">", ">=", "")
    if after:
        value, row_id = next(numbers), next(numbers)
        conditions.append(_AFTER.format(column=column, or_equal=or_equal, beyond=beyond, value=value, id=row_id))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {_columns()}, c.slug AS category_slug FROM products p"  # noqa: S608  # nosec B608  # model column names
        f" JOIN categories c ON c.id = p.category_id{where}"
        f" ORDER BY p.{column}{direction}, p.id{direction} LIMIT {next(numbers)}"
    )


@functools.cache
def add_stock(dialect: str, taking: bool) -> str:
    """`stock = stock + delta` where the result stays within bounds, returning the stock it left; no
    row when the product is missing or out of bounds. Bound values: delta, updated_at, the id, then
    the bound: the least stock a taking (negative) delta needs, the most an adding one allows."""
    p = functools.partial(placeholder, dialect)
    bound = f"stock >= {p(4)}" if taking else f"stock <= {p(4)}"
    return (
        f"UPDATE products SET stock = stock + {p(1)}, version = version + 1, updated_at = {p(2)}"  # noqa: S608  # nosec B608  # placeholders only
        f" WHERE id = {p(3)} AND {bound} RETURNING stock"
    )


@functools.cache
def insert_product(dialect: str) -> tuple[str, tuple[str, ...]]:
    """A product row, with the model fields whose values it binds, in order: the columns Tortoise's
    create writes, except that category_id is looked up by the slug bound in its place. A slug that
    names no category leaves it NULL, which the column's NOT NULL refuses."""
    projection = Product._meta.fields_db_projection
    fields = tuple(projection)
    values = ", ".join(
        f"(SELECT id FROM categories WHERE slug = {placeholder(dialect, n)})"  # noqa: S608  # nosec B608  # placeholder only
        if field == "category_id"
        else placeholder(dialect, n)
        for n, field in enumerate(fields, 1)
    )
    columns = ", ".join(projection[field] for field in fields)
    return f"INSERT INTO products ({columns}) VALUES ({values})", fields  # noqa: S608  # nosec B608  # model column names


@functools.cache
def insert_movement(dialect: str) -> str:
    """A ledger row, returning its id, in the column order of Tortoise's create. Bound values:
    delta, reason, resulting stock, actor, created_at, the product's id."""
    values = ", ".join(placeholder(dialect, number) for number in range(1, 7))
    columns = "delta, reason, resulting_stock, actor, created_at, product_id"
    return f"INSERT INTO stock_movements ({columns}) VALUES ({values}) RETURNING id"  # noqa: S608  # nosec B608  # placeholders only
