"""Product operations. No HTTP here: errors are CatalogError subclasses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.filters import escape_like
from tortoise.transactions import in_transaction

from catalog.categories.models import Category
from catalog.errors import (
    InsufficientStock,
    PreconditionFailed,
    ProductNotFound,
    SkuConflict,
    ValidationFailed,
)
from catalog.money import check_price, from_units, to_units
from catalog.products import statements
from catalog.products.models import Product, StockMovement
from catalog.products.pagination import decode_cursor, encode_cursor, keyset
from catalog.products.schemas import MAX_STOCK, ProductIn, ProductQuery
from catalog.schemas import PageQuery

INITIAL_STOCK_REASON = "initial stock"
MOVEMENT_SORT = "id"


def _unknown_category() -> ValidationFailed:
    return ValidationFailed(errors=[{"pointer": "/category", "detail": "no such category; create it first"}])


async def _category_id(slug: str) -> int:
    category_id = await Category.filter(slug=slug).first().values_list("id", flat=True)
    if category_id is None:
        raise _unknown_category()
    return int(category_id)  # type: ignore[call-overload]


async def get_product(product_id: UUID) -> tuple[Product, str]:
    db = Product._meta.db
    pk = Product._meta.pk.to_db_value(product_id, Product)
    rows = await db.execute_query_dict(statements.get_by_id(db.capabilities.dialect), [pk])
    if not rows:
        raise ProductNotFound(f"No product {product_id}")
    # The ORM's own row-to-model conversion, so every type comes back as a query would give it.
    return Product._init_from_db(**rows[0]), rows[0]["category_slug"]


async def create_product(data: ProductIn, actor: str) -> tuple[Product, str]:
    """The product and its first ledger row in one transaction. The category is looked up by slug
    inside the INSERT: a statement of its own cost a round trip and a span on every creation."""
    # Its id, version and timestamps are made as Tortoise's create makes them.
    product = Product(
        sku=data.sku,
        name=data.name,
        description=data.description,
        price_units=to_units(data.price),
        currency=data.currency,
        stock=data.stock,
        status=data.status,
    )
    fields = Product._meta.fields_map
    try:
        async with in_transaction() as connection:
            sql, names = statements.insert_product(connection.capabilities.dialect)
            values = {name: fields[name].to_db_value(getattr(product, name), product) for name in names}
            values["category_id"] = data.category  # the slug, which the statement looks up
            await connection.execute_insert(sql, [values[name] for name in names])
            if data.stock:
                await _record_movement(connection, values["id"], data.stock, INITIAL_STOCK_REASON, data.stock, actor)
    except IntegrityError:
        # The row named no category (NOT NULL) or a taken SKU (UNIQUE): the category is reported first.
        if not await Category.exists(slug=data.category):
            raise _unknown_category() from None
        raise SkuConflict(f"SKU {data.sku!r} is taken") from None
    return product, data.category


async def update_product(
    product_id: UUID, expected_versions: frozenset[int] | None, fields: dict[str, Any]
) -> tuple[Product, str]:
    """Apply `fields` (API names) in one conditional UPDATE: 412 if the version moved on."""
    current, _ = await get_product(product_id)
    changes: dict[str, Any] = {}
    if "category" in fields:
        changes["category_id"] = await _category_id(fields.pop("category"))
    currency = fields.get("currency", current.currency)
    if "price" in fields or "currency" in fields:
        price = fields.pop("price", None) or from_units(current.price_units, current.currency)
        if problem := check_price(price, currency):
            raise ValidationFailed(errors=[{"pointer": "/price", "detail": problem}])
        changes["price_units"] = to_units(price)
    changes.update(fields)
    condition = Q(id=product_id) & _version_in(expected_versions)
    try:
        updated = await Product.filter(condition).update(
            **changes, version=F("version") + 1, updated_at=datetime.now(UTC)
        )
    except IntegrityError:
        raise SkuConflict(f"SKU {fields.get('sku')!r} is taken") from None
    if not updated:
        await _raise_missing_or_stale(product_id)
    return await get_product(product_id)


async def delete_product(product_id: UUID, expected_versions: frozenset[int] | None) -> None:
    condition = Q(id=product_id) & _version_in(expected_versions)
    if not await Product.filter(condition).delete():
        await _raise_missing_or_stale(product_id)


def _version_in(versions: frozenset[int] | None) -> Q:
    """The If-Match condition: the row's version is one the client named (None: any)."""
    return Q() if versions is None else Q(version__in=sorted(versions))


async def _raise_missing_or_stale(product_id: UUID) -> None:
    if await Product.exists(id=product_id):
        raise PreconditionFailed("The product changed since you read it; GET it again and retry")
    raise ProductNotFound(f"No product {product_id}")


async def _record_movement(
    connection: BaseDBAsyncClient, product_pk: Any, delta: int, reason: str, resulting_stock: int, actor: str
) -> dict[str, Any]:
    """A ledger row, written with one statement and returned as the ledger reads it. The ORM's
    create built a model and ran its save hooks around the same INSERT."""
    created_at = datetime.now(UTC)
    sql = statements.insert_movement(connection.capabilities.dialect)
    rows = await connection.execute_query_dict(sql, [delta, reason, resulting_stock, actor, created_at, product_pk])
    return {
        "id": rows[0]["id"],
        "delta": delta,
        "reason": reason,
        "resulting_stock": resulting_stock,
        "actor": actor,
        "created_at": created_at,
    }


async def adjust_stock(product_id: UUID, delta: int, reason: str, actor: str) -> dict[str, Any]:
    """One conditional UPDATE (`stock = stock + delta WHERE stock + delta BETWEEN 0 AND MAX`) that
    returns the stock it left, plus its ledger row, in one transaction: concurrent adjustments can
    never oversell."""
    bound = -delta if delta < 0 else MAX_STOCK - delta
    pk = Product._meta.pk.to_db_value(product_id, Product)
    async with in_transaction() as connection:
        sql = statements.add_stock(connection.capabilities.dialect, taking=delta < 0)
        rows = await connection.execute_query_dict(sql, [delta, datetime.now(UTC), pk, bound])
        if not rows:
            stock = await Product.filter(id=product_id).first().values_list("stock", flat=True)
            if stock is None:
                raise ProductNotFound(f"No product {product_id}")
            limit = "below 0" if delta < 0 else f"above {MAX_STOCK}"
            raise InsufficientStock(f"Stock is {stock}; a delta of {delta} would take it {limit}", stock=stock)
        return await _record_movement(connection, pk, delta, reason, rows[0]["stock"], actor)


async def list_products(query: ProductQuery) -> tuple[Sequence[Mapping[str, Any]], str | None]:
    """One page in the query's order, as the driver returns the page statement's rows (each with its
    category's `category_slug`), and the cursor of the next. No ORM model per row, nor even a dict:
    the response reads each row's columns by name once."""
    column, descending, after = keyset(query.sort, query.cursor)
    fields = Product._meta.fields_map
    given = {
        "category": query.category,
        "status": None if query.status is None else fields["status"].to_db_value(query.status, Product),
        "min_price": None if query.min_price is None else to_units(query.min_price),
        "max_price": None if query.max_price is None else to_units(query.max_price),
        "q": None if query.q is None else f"%{escape_like(query.q)}%",
    }
    filters = tuple(name for name in statements.PAGE_FILTERS if given[name] is not None)
    values = [given[name] for name in filters]
    if after is not None:
        values += [fields[column].to_db_value(after[0], Product), fields["id"].to_db_value(after[1], Product)]
    db = Product._meta.db
    sql = statements.page(db.capabilities.dialect, filters, column, descending, after is not None)
    _, rows = await db.execute_query(sql, [*values, query.limit + 1])
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        # Typed as the model would hold them, so a cursor reads the same on every database.
        value = fields[column].to_python_value(last[column])
        next_cursor = encode_cursor(query.sort, value, last["id"])
    return page, next_cursor


async def list_movements(product_id: UUID, query: PageQuery) -> tuple[list[StockMovement], str | None]:
    """Oldest first; the cursor is the last movement id of the page."""
    if not await Product.exists(id=product_id):
        raise ProductNotFound(f"No product {product_id}")
    condition = Q(product_id=product_id)
    if query.cursor is not None:
        after_id, _ = decode_cursor(query.cursor, MOVEMENT_SORT)
        condition &= Q(id__gt=after_id)
    rows = await StockMovement.filter(condition).order_by("id").limit(query.limit + 1)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return page, (encode_cursor(MOVEMENT_SORT, page[-1].id, page[-1].id) if more else None)
