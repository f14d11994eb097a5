"""HTTP handlers for /v1/products: parse, call the service, answer through the response models."""

from __future__ import annotations

from uuid import UUID

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty

from catalog.errors import InsufficientStock, InvalidCursor, ProductNotFound, SkuConflict
from catalog.http import IF_MATCH, IF_NONE_MATCH, json_response, parse_body, parse_query, required_versions, with_etag
from catalog.operations import ResponseHeader, operation
from catalog.products import idempotency, service
from catalog.products.schemas import (
    PageQuery,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductQuery,
    ProductReplace,
    StockAdjustment,
    StockMovementOut,
    StockMovementPage,
)

_STOCK_IS_SEPARATE = {"stock": "change stock with POST /v1/products/{id}/stock"}
_ETAG = ResponseHeader("ETag")


@operation(200, out=ProductPage, query=ProductQuery, errors=(InvalidCursor,))
async def list_products(request: Request) -> HTTPResponse:
    """List products (filters, sort, cursor); `next_cursor` fetches the next page."""
    rows, next_cursor = await service.list_products(parse_query(request, ProductQuery))
    return json_response({"items": [ProductOut.document(row) for row in rows], "next_cursor": next_cursor})


@operation(
    201,
    out=ProductOut,
    body=ProductIn,
    headers=(idempotency.KEY,),
    sends=(ResponseHeader("Location"), _ETAG, ResponseHeader(idempotency.REPLAYED, required=False)),
    errors=(SkuConflict,),
)
async def create_product(request: Request) -> HTTPResponse:
    """Create a product; with Idempotency-Key a retry replays the first 201."""
    data = parse_body(request, ProductIn)

    async def create() -> idempotency.Created:
        product = ProductOut.from_row(*await service.create_product(data, request.ctx.subject))
        return idempotency.Created(201, product, f"/v1/products/{product.id}")

    created = await idempotency.create_once(request, create)
    headers = {"Location": created.location}
    if created.replayed is not None:
        headers[idempotency.REPLAYED] = "true" if created.replayed else "false"
    return with_etag(request, created.body, created.body.version, created.status, headers)


@operation(200, out=ProductOut, headers=(IF_NONE_MATCH,), sends=(_ETAG,), errors=(ProductNotFound,))
async def get_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Get a product (ETag)."""
    product, category = await service.get_product(product_id)
    return with_etag(request, ProductOut.from_row(product, category), product.version)


@operation(
    200, out=ProductOut, body=ProductReplace, headers=(IF_MATCH,), sends=(_ETAG,), errors=(ProductNotFound, SkuConflict)
)
async def replace_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Replace a product: every writable field (stock changes only through /stock)."""
    data = parse_body(request, ProductReplace, read_only=_STOCK_IS_SEPARATE)
    versions = required_versions(request)  # after the body: a malformed request is a 4xx of its own
    product, category = await service.update_product(product_id, versions, data.model_dump())
    return with_etag(request, ProductOut.from_row(product, category), product.version)


@operation(
    200, out=ProductOut, body=ProductPatch, headers=(IF_MATCH,), sends=(_ETAG,), errors=(ProductNotFound, SkuConflict)
)
async def update_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Update a product: the fields sent."""
    patch = parse_body(request, ProductPatch, read_only=_STOCK_IS_SEPARATE)
    versions = required_versions(request)
    product, category = await service.update_product(product_id, versions, patch.model_dump(exclude_unset=True))
    return with_etag(request, ProductOut.from_row(product, category), product.version)


@operation(204, headers=(IF_MATCH,), errors=(ProductNotFound,))
async def delete_product(request: Request, product_id: UUID) -> HTTPResponse:
    """Delete a product."""
    await service.delete_product(product_id, required_versions(request))
    return empty()


@operation(201, out=StockMovementOut, body=StockAdjustment, errors=(ProductNotFound, InsufficientStock))
async def adjust_stock(request: Request, product_id: UUID) -> HTTPResponse:
    """Adjust stock atomically, recorded in the ledger; a refusal carries the current `stock`."""
    data = parse_body(request, StockAdjustment)
    try:
        movement = await service.adjust_stock(product_id, data.delta, data.reason, request.ctx.subject)
    except InsufficientStock:
        request.app.ctx.metrics.stock_adjustments.labels("insufficient").inc()
        raise
    request.app.ctx.metrics.stock_adjustments.labels("applied").inc()
    return json_response(StockMovementOut.model_validate(movement), status=201)


@operation(200, out=StockMovementPage, query=PageQuery, errors=(ProductNotFound, InvalidCursor))
async def list_stock_movements(request: Request, product_id: UUID) -> HTTPResponse:
    """List stock movements, oldest first."""
    movements, next_cursor = await service.list_movements(product_id, parse_query(request, PageQuery))
    items = [StockMovementOut.model_validate(movement) for movement in movements]
    return json_response(StockMovementPage(items=items, next_cursor=next_cursor))


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
