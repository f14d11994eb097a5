"""The two reference servers the catalog is measured against, with no middleware at all: bare Sanic
returning a fixed JSON body (the framework ceiling) and bare Sanic doing the catalog's point read
with raw asyncpg (the database floor). Run as `python -m bench.baseline MODE PORT WORKERS [DSN]`."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

# The catalog's GET by id (`select_related("category")`) as one statement.
POINT_READ = """
SELECT p.id, p.sku, p.name, p.description, c.slug AS category, p.price_units, p.currency, p.stock,
       p.status, p.version, p.created_at, p.updated_at
FROM products p JOIN categories c ON c.id = p.category_id
WHERE p.id = $1
"""
PRICE_SCALE = Decimal(10_000)
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
        return json(product_body(row))

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
