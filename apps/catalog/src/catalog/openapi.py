"""The OpenAPI 3.1 document, built from the same pydantic models that validate requests."""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from pydantic import BaseModel

from catalog import __version__
from catalog.categories.schemas import CategoryIn, CategoryOut, CategoryPage, CategoryPatch
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

_MODELS: tuple[type[BaseModel], ...] = (
    CategoryIn, CategoryPatch, CategoryOut, CategoryPage, ProductIn, ProductReplace, ProductPatch,
    ProductOut, ProductPage, StockAdjustment, StockMovementOut, StockMovementPage,
)  # fmt: skip
_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]}, "trace_id": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "pointer": {"type": "string"}, "parameter": {"type": "string"}, "detail": {"type": "string"}}}},
    },
}  # fmt: skip
_DESCRIPTIONS = {
    200: "OK", 201: "Created", 204: "No content", 304: "Not modified", 400: "Malformed request",
    401: "Missing or invalid token", 403: "Token lacks the scope", 404: "Not found", 409: "Conflict",
    412: "If-Match is stale", 413: "Body too large", 415: "Body is not JSON", 422: "Validation failed",
    428: "If-Match missing", 503: "Database unavailable or draining",
}  # fmt: skip
_REF_TEMPLATE = "#/components/schemas/{model}"
_ID = {"name": "product_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    return [
        {"name": name, "in": "query", "required": False, "schema": _without_null(prop)}
        for name, prop in schema["properties"].items()
    ]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent, never null: drop pydantic's `anyOf [..., null]`."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        schema = {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **variants[0]}
    return schema


def _op(
    summary: str,
    ok: int,
    out: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (),
    scope: str = "catalog:read",
) -> dict:
    responses: dict[str, Any] = {str(ok): {"description": _DESCRIPTIONS[ok]}}
    if out is not None:
        responses[str(ok)]["content"] = {"application/json": {"schema": _ref(out)}}
    for status in (400, 401, 403, 503, *errors):
        if status < 400:
            responses[str(status)] = {"description": _DESCRIPTIONS[status]}
            continue
        responses[str(status)] = {
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": responses,
        "parameters": params or [],
        "security": [{"bearer": [scope]}],
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


_write = partial(_op, scope="catalog:write")


@cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _PROBLEM}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    body_errors = (413, 415, 422)
    paths = {
        "/v1/categories": {
            "get": _op("List categories", 200, CategoryPage),
            "post": _write("Create a category", 201, CategoryOut, CategoryIn, errors=(409, *body_errors)),
        },
        "/v1/categories/{slug}": {
            "get": _op("Get a category", 200, CategoryOut, params=[_SLUG], errors=(404,)),
            "patch": _write("Update a category", 200, CategoryOut, CategoryPatch, [_SLUG], (404, *body_errors)),
            "delete": _write("Delete a category without products", 204, params=[_SLUG], errors=(404, 409)),
        },
        "/v1/products": {
            "get": _op("List products (filters, sort, cursor)", 200, ProductPage, params=_query(ProductQuery)),
            "post": _write("Create a product", 201, ProductOut, ProductIn, [_IDEMPOTENCY], (409, *body_errors)),
        },
        "/v1/products/{product_id}": {
            "get": _op("Get a product (ETag)", 200, ProductOut, params=[_ID], errors=(304, 404)),
            "put": _write(
                "Replace a product",
                200,
                ProductOut,
                ProductReplace,
                [_ID, _IF_MATCH],
                (404, 409, 412, 428, *body_errors),
            ),
            "patch": _write(
                "Update a product", 200, ProductOut, ProductPatch, [_ID, _IF_MATCH], (404, 409, 412, 428, *body_errors)
            ),
            "delete": _write("Delete a product", 204, params=[_ID, _IF_MATCH], errors=(404, 412, 428)),
        },
        "/v1/products/{product_id}/stock": {
            "post": _write(
                "Adjust stock atomically", 201, StockMovementOut, StockAdjustment, [_ID], (404, 409, *body_errors)
            ),
        },
        "/v1/products/{product_id}/stock-movements": {
            "get": _op("List stock movements", 200, StockMovementPage, params=[_ID, *_query(PageQuery)], errors=(404,)),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Product Catalog API",
            "version": __version__,
            "description": "Errors are RFC 9457 application/problem+json with field pointers.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
