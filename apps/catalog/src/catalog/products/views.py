"""HTTP handlers for /v1/products: parse, call the service, shape the response."""

from __future__ import annotations

from uuid import UUID

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from catalog.errors import InsufficientStock
from catalog.http import parse_body, parse_query, read_json_object, required_version, with_etag
from catalog.products import idempotency, service
from catalog.products.schemas import (
    PageQuery,
    ProductIn,
    ProductPatch,
    ProductQuery,
    ProductReplace,
    StockAdjustment,
)

_STOCK_IS_SEPARATE = {"stock": "change stock with POST /v1/products/{id}/stock"}


async def list_products(request: Request) -> HTTPResponse:
    """One page, filtered and sorted; `next_cursor` fetches the next. 200; 400 invalid-parameter/cursor."""
    items, next_cursor = await service.list_products(parse_query(request, ProductQuery))
    return json({"items": items, "next_cursor": next_cursor})


async def create_product(request: Request) -> HTTPResponse:
    """201 + Location + ETag; with Idempotency-Key a retry replays the first 201.
    409 sku-conflict; 422 validation-error or idempotency-key-reused; 400/415."""
    data = parse_body(request, ProductIn)
    actor = request.ctx.subject

    async def create() -> tuple[int, dict, str]:
        product, slug = await service.create_product(data, actor)
        return 201, service.product_out(product, slug), f"/v1/products/{product.id}"

    key = request.headers.get(idempotency.HEADER)
    if key is None:
        status, body, location = await create()
        return with_etag(request, body, body["version"], status, {"Location": location})
    fingerprint = idempotency.body_fingerprint(read_json_object(request))
    replay = await idempotency.find_replay(actor, idempotency.check_key(key), fingerprint)
    replayed = replay is not None
    if replay is None:
        replay = await idempotency.run_once(actor, key, fingerprint, create)
    headers = {"Location": replay.location, "Idempotent-Replayed": str(replayed).lower()}
    return with_etag(request, replay.body, replay.body["version"], replay.status, headers)


async def get_product(request: Request, product_id: UUID) -> HTTPResponse:
    """200 with ETag; 304 on a matching If-None-Match; 404 product-not-found."""
    product, slug = await service.get_product(product_id)
    return with_etag(request, service.product_out(product, slug), product.version)


async def replace_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Replace every writable field. 200 with the new ETag; 428 without If-Match; 412 stale; 404; 409; 422."""
    version = required_version(request)
    data = parse_body(request, ProductReplace, read_only=_STOCK_IS_SEPARATE)
    product, slug = await service.update_product(product_id, version, data.model_dump())
    return with_etag(request, service.product_out(product, slug), product.version)


async def update_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Change the fields sent. 200 with the new ETag; 428 without If-Match; 412 stale; 404; 409; 422."""
    version = required_version(request)
    patch = parse_body(request, ProductPatch, read_only=_STOCK_IS_SEPARATE)
    product, slug = await service.update_product(product_id, version, patch.model_dump(exclude_unset=True))
    return with_etag(request, service.product_out(product, slug), product.version)


async def delete_product(request: Request, product_id: UUID) -> HTTPResponse:
    """204; 428 without If-Match; 412 stale; 404."""
    await service.delete_product(product_id, required_version(request))
    return empty()


async def adjust_stock(request: Request, product_id: UUID) -> HTTPResponse:
    """Atomic stock change, recorded in the ledger. 201 with the movement; 409 insufficient-stock
    (with the current `stock`); 404; 422."""
    data = parse_body(request, StockAdjustment)
    try:
        movement = await service.adjust_stock(product_id, data.delta, data.reason, request.ctx.subject)
    except InsufficientStock:
        request.app.ctx.metrics.stock_adjustments.labels("insufficient").inc()
        raise
    request.app.ctx.metrics.stock_adjustments.labels("applied").inc()
    return json(service.movement_out(movement), status=201)


async def list_stock_movements(request: Request, product_id: UUID) -> HTTPResponse:
    """The product's stock ledger, oldest first. 200; 404; 400 invalid-parameter/cursor."""
    items, next_cursor = await service.list_movements(product_id, parse_query(request, PageQuery))
    return json({"items": items, "next_cursor": next_cursor})


def blueprint() -> Blueprint:
    """The routes, one per line; a new Blueprint per app (tests build many apps)."""
    bp = Blueprint("products", url_prefix="/v1/products")
    bp.add_route(list_products, "/", methods=["GET"])
    bp.add_route(create_product, "/", methods=["POST"])
    bp.add_route(get_product, "/<product_id:uuid>", methods=["GET"])
    bp.add_route(replace_product, "/<product_id:uuid>", methods=["PUT"])
    bp.add_route(update_product, "/<product_id:uuid>", methods=["PATCH"])
    bp.add_route(delete_product, "/<product_id:uuid>", methods=["DELETE"])
    bp.add_route(adjust_stock, "/<product_id:uuid>/stock", methods=["POST"])
    bp.add_route(list_stock_movements, "/<product_id:uuid>/stock-movements", methods=["GET"])
    return bp
