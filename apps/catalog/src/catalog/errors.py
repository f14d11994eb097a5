"""The error hierarchy: each error names its HTTP status, a stable slug (its problem type) and a
human title. Raised anywhere; catalog.problems renders them as RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

# How long a client should wait before retrying a 503.
RETRY_AFTER_SECONDS = 5


class CatalogError(Exception):
    """An error with its HTTP status, a stable slug (the problem type) and a human title."""

    # Class defaults; an instance may override them (catalog.problems does for Sanic's other 4xx).
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"
    # Headers every response of this kind carries (the OpenAPI document lists them); a raise may
    # add to them or replace their values.
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = {**self.default_headers, **(headers or {})}
        self.extensions = extensions


class BadRequest(CatalogError):
    status, slug, title = 400, "bad-request", "The request is malformed"


class MalformedJson(CatalogError):
    status, slug, title = 400, "malformed-json", "The body is not valid JSON"


class InvalidParameter(CatalogError):
    status, slug, title = 400, "invalid-parameter", "A query parameter is invalid"


class InvalidCursor(CatalogError):
    status, slug, title = 400, "invalid-cursor", "The pagination cursor is invalid"


# RFC 6750: 401 and 403 name the auth scheme; auth.py adds the error and scope to the challenge.
BEARER_CHALLENGE = 'Bearer realm="catalog"'
_CHALLENGE = {"WWW-Authenticate": BEARER_CHALLENGE}
_RETRY_LATER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class Unauthenticated(CatalogError):
    status, slug, title = 401, "unauthenticated", "A valid bearer token is required"
    default_headers = _CHALLENGE


class InsufficientScope(CatalogError):
    status, slug, title = 403, "insufficient-scope", "The token lacks the required scope"
    default_headers = _CHALLENGE


class NotFound(CatalogError):
    status, slug, title = 404, "not-found", "No such resource"


class ProductNotFound(NotFound):
    slug, title = "product-not-found", "No product with this id"


class CategoryNotFound(NotFound):
    slug, title = "category-not-found", "No category with this slug"


class MethodNotAllowed(CatalogError):
    status, slug, title = 405, "method-not-allowed", "This method is not allowed here"


class Conflict(CatalogError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class SkuConflict(Conflict):
    slug, title = "sku-conflict", "A product with this SKU already exists"


class CategoryConflict(Conflict):
    slug, title = "category-conflict", "A category with this slug already exists"


class CategoryInUse(Conflict):
    slug, title = "category-in-use", "The category still has products"


class InsufficientStock(Conflict):
    slug, title = "insufficient-stock", "Not enough stock for this adjustment"


class PreconditionFailed(CatalogError):
    status, slug, title = 412, "precondition-failed", "The resource has changed since it was read"


class PayloadTooLarge(CatalogError):
    status, slug, title = 413, "payload-too-large", "The body is too large"


class HeadersTooLarge(CatalogError):
    status, slug, title = 431, "headers-too-large", "The request headers are too large"


class UnsupportedMediaType(CatalogError):
    status, slug, title = 415, "unsupported-media-type", "The body must be application/json"


class ValidationFailed(CatalogError):
    status, slug, title = 422, "validation-error", "The body or parameters failed validation"


class IdempotencyKeyReused(CatalogError):
    status, slug = 422, "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different body"


class PreconditionRequired(CatalogError):
    status, slug, title = 428, "precondition-required", "Send If-Match with the ETag you read"


class DatabaseUnavailable(CatalogError):
    status, slug, title = 503, "database-unavailable", "The database is unavailable; retry shortly"
    default_headers = _RETRY_LATER


class Draining(CatalogError):
    status, slug, title = 503, "draining", "The server is shutting down"
    default_headers = _RETRY_LATER


class ResponseTimeout(CatalogError):
    status, slug, title = 503, "response-timeout", "The request took longer than the server allows; retry shortly"
    default_headers = _RETRY_LATER
