"""The reference servers the catalog is measured against, with no middleware at all: bare Sanic
returning a fixed JSON body (the framework ceiling) and bare Sanic doing each benched endpoint's
database work with raw asyncpg (the floor of that endpoint). Run as
`python -m bench.baseline MODE PORT WORKERS [DSN POOL_MAX]`.

The floor sends the statements the catalog sends, one for one (read off PostgreSQL's statement log
with `log_statement = all`), on a pool with the catalog's settings, and answers with the catalog's
JSON shape, so an endpoint's `x floor` is what the service's own layers cost: validation, auth,
logging, metrics, tracing and the ORM. It validates nothing and handles no error beyond what the
bench's requests can meet. Where its SQL differs from the catalog's, the comment says why.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

# The API's cursor format, through the service's own codec (pure functions), so a deep page is the same page.
from catalog.products.pagination import decode_cursor, encode_cursor

_PRODUCT_COLUMNS = (
    "p.id, p.sku, p.name, p.description, c.slug AS category, p.price_units, p.currency, p.stock,"
    " p.status, p.version, p.created_at, p.updated_at"
)
# GET by id: the catalog's statement without p.category_id (read, never sent back).
POINT_READ = f"SELECT {_PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = $1"  # noqa: S608  # nosec B608  # constant text
# A page by category in the default order (name, id), one row more than the page to know whether
# another follows, after a cursor or not: the catalog's statement without p.category_id.
_PAGE = (
    f"SELECT {_PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id"  # noqa: S608  # nosec B608  # constant text
    " WHERE p.category_id = (SELECT id FROM categories WHERE slug = $1){after}"
    " ORDER BY p.name, p.id LIMIT {limit}"
)
FIRST_PAGE = _PAGE.format(after="", limit="$2")
# The redundant `name >= $2` lets the (category_id, name, id) index start at the cursor, as in the catalog.
PAGE_AFTER = _PAGE.format(after=" AND p.name >= $2 AND (p.name > $2 OR (p.name = $2 AND p.id > $3))", limit="$4")
# POST /v1/products: the product, its category looked up by slug in the INSERT, and its first
# ledger row, in one transaction (BEGIN and COMMIT are asyncpg's); ids and times made here.
INSERT_PRODUCT = (
    "INSERT INTO products (id, sku, name, description, price_units, currency, stock, status, version,"
    " created_at, updated_at, category_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " (SELECT id FROM categories WHERE slug = $12))"
)
INSERT_MOVEMENT = (
    "INSERT INTO stock_movements (delta, reason, resulting_stock, actor, created_at, product_id)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
)
# POST /v1/products/{id}/stock, in one transaction: the conditional update (a positive delta, as
# the bench sends, is bounded above) returning the stock it left, then the ledger row. The stock is
# read on its own only when the update changed nothing, to tell a missing product from a full one.
ADD_STOCK = (
    "UPDATE products SET stock = stock + $1, version = version + 1, updated_at = $2 WHERE id = $3 AND stock <= $4"
    " RETURNING stock"
)
READ_STOCK = "SELECT stock FROM products WHERE id = $1 LIMIT 1"
MAX_STOCK = 1_000_000_000
PRICE_SCALE = Decimal(10_000)
LIST_LIMIT = 20
# A product body of the catalog's shape and size.
FIXED_BODY = {
    "id": "4f1c2b9e-8d53-4a57-9a36-0d8f2b7c1e42",
    "sku": "SKU-00004242",
    "name": "Product 5f93f983524def3dca464469d2cf9f3e",
    "description": "Seeded by make bench",
    "category": "cat-7",
    "price": "1042.00",
    "currency": "EUR",
    "stock": 1000,
    "status": "active",
    "version": 1,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def product_body(row: Any) -> dict[str, Any]:
    created: datetime = row["created_at"]
    updated: datetime = row["updated_at"]
    return {
        "id": str(row["id"]),
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "price": str((Decimal(row["price_units"]) / PRICE_SCALE).quantize(Decimal("0.01"))),
        "currency": row["currency"],
        "stock": row["stock"],
        "status": row["status"],
        "version": row["version"],
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
    }


async def _keep_session(connection: Any) -> None:
    """Pool reset hook: nothing to undo, so no extra round trip per release."""


def create_app(mode: str, dsn: str | None, pool_max: int) -> Sanic:
    app = Sanic(f"bench_{mode}", configure_logging=False)
    app.config.update(ACCESS_LOG=False, MOTD=False)

    @app.get("/livez")
    async def livez(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    if mode == "ceiling":

        @app.get("/v1/products/<product_id:uuid>")
        async def fixed(request: Request, product_id: UUID) -> HTTPResponse:
            return json(FIXED_BODY)

        return app

    import asyncpg

    @app.before_server_start
    async def open_pool(app: Sanic) -> None:
        # The same pool settings as the catalog's (catalog.db): no reset query on release.
        app.ctx.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_max, reset=_keep_session)

    @app.after_server_stop
    async def close_pool(app: Sanic) -> None:
        await app.ctx.pool.close()

    @app.get("/v1/products/<product_id:uuid>")
    async def point_read(request: Request, product_id: UUID) -> HTTPResponse:
        row = await request.app.ctx.pool.fetchrow(POINT_READ, product_id)
        if row is None:
            return json({"detail": "not found"}, status=404)
        return json(product_body(row), headers={"ETag": f'"v{row["version"]}"'})

    @app.get("/v1/products")
    async def list_page(request: Request) -> HTTPResponse:
        category = request.args.get("category")
        limit = int(request.args.get("limit", LIST_LIMIT))
        cursor = request.args.get("cursor")
        pool = request.app.ctx.pool
        if cursor is None:
            rows = await pool.fetch(FIRST_PAGE, category, limit + 1)
        else:
            name, row_id = decode_cursor(cursor, "name")
            rows = await pool.fetch(PAGE_AFTER, category, name, UUID(row_id), limit + 1)
        page = rows[:limit]
        next_cursor = encode_cursor("name", page[-1]["name"], page[-1]["id"]) if len(rows) > limit else None
        return json({"items": [product_body(row) for row in page], "next_cursor": next_cursor})

    @app.post("/v1/products")
    async def create(request: Request) -> HTTPResponse:
        data = request.json
        now = datetime.now(UTC)
        product_id = uuid4()
        units = int(Decimal(data["price"]) * PRICE_SCALE)
        stock, status, description = data.get("stock", 0), data.get("status", "draft"), data.get("description", "")
        async with request.app.ctx.pool.acquire() as connection:
            try:
                async with connection.transaction():
                    await connection.execute(
                        INSERT_PRODUCT, product_id, data["sku"], data["name"], description, units,
                        data["currency"], stock, status, 1, now, now, data["category"],
                    )  # fmt: skip
                    if stock:
                        await connection.fetchval(
                            INSERT_MOVEMENT, stock, "initial stock", stock, "bench", now, product_id
                        )
            except asyncpg.UniqueViolationError:
                return json({"detail": "sku taken"}, status=409)
        row = {
            "id": product_id, "sku": data["sku"], "name": data["name"], "description": description,
            "category": data["category"], "price_units": units, "currency": data["currency"], "stock": stock,
            "status": status, "version": 1, "created_at": now, "updated_at": now,
        }  # fmt: skip
        headers = {"ETag": '"v1"', "Location": f"/v1/products/{product_id}"}
        return json(product_body(row), status=201, headers=headers)

    @app.post("/v1/products/<product_id:uuid>/stock")
    async def add_stock(request: Request, product_id: UUID) -> HTTPResponse:
        data = request.json
        delta, reason = data["delta"], data["reason"]
        now = datetime.now(UTC)
        async with request.app.ctx.pool.acquire() as connection, connection.transaction():
            stock = await connection.fetchval(ADD_STOCK, delta, now, product_id, MAX_STOCK - delta)
            if stock is None:
                current = await connection.fetchval(READ_STOCK, product_id)
                return json({"detail": "not found or above the maximum"}, status=404 if current is None else 409)
            movement_id = await connection.fetchval(INSERT_MOVEMENT, delta, reason, stock, "bench", now, product_id)
        body = {"id": movement_id, "delta": delta, "reason": reason, "resulting_stock": stock, "actor": "bench"}
        return json({**body, "created_at": now.isoformat()}, status=201)

    return app


def serve(mode: str, port: int, workers: int, dsn: str | None, pool_max: int) -> None:
    from sanic.worker.loader import AppLoader

    # Spawned workers unpickle the factory by module name, so it must be bench.baseline's, not __main__'s.
    from bench.baseline import create_app as factory

    loader = AppLoader(factory=partial(factory, mode, dsn, pool_max))
    app = loader.load()
    app.prepare(host="127.0.0.1", port=port, workers=workers, single_process=False)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    mode, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dsn = sys.argv[4] if len(sys.argv) > 4 else None
    pool_max = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    serve(mode, port, workers, dsn, pool_max)
