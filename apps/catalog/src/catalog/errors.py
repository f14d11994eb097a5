"""The error hierarchy and the one RFC 9457 problem+json renderer every error goes through."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import ValidationError
from sanic import Request, Sanic
from sanic import exceptions as sanic_exceptions
from sanic.constants import HTTP_METHODS
from sanic.response import HTTPResponse, json

from catalog.db_engines.faults import is_database_down

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

log = logging.getLogger("catalog.errors")


class CatalogError(Exception):
    """An error with its HTTP status, a stable slug (the problem type) and a human title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

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
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(CatalogError):
    status, slug, title = 400, "bad-request", "The request is malformed"


class MalformedJson(CatalogError):
    status, slug, title = 400, "malformed-json", "The body is not valid JSON"


class InvalidParameter(CatalogError):
    status, slug, title = 400, "invalid-parameter", "A query parameter is invalid"


class InvalidCursor(CatalogError):
    status, slug, title = 400, "invalid-cursor", "The pagination cursor is invalid"


class Unauthenticated(CatalogError):
    status, slug, title = 401, "unauthenticated", "A valid bearer token is required"


class InsufficientScope(CatalogError):
    status, slug, title = 403, "insufficient-scope", "The token lacks the required scope"


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


class Draining(CatalogError):
    status, slug, title = 503, "draining", "The server is shutting down"


class ResponseTimeout(CatalogError):
    status, slug, title = 503, "response-timeout", "The request took longer than the server allows; retry shortly"


def _problem_types(root: type[CatalogError] = CatalogError) -> dict[str, type[CatalogError]]:
    """Every error class by slug, found from the hierarchy so a new class cannot be forgotten."""
    found = {root.slug: root}
    for kind in root.__subclasses__():
        found.update(_problem_types(kind))
    return found


def problem_type(slug: str) -> str:
    """The problem type URI; /problems/<slug> on this server describes it."""
    return f"/problems/{slug}"


def json_pointer(location: tuple[int | str, ...]) -> str:
    """RFC 6901 pointer for a pydantic error location."""
    parts = (str(p).replace("~", "~0").replace("/", "~1") for p in location)
    return "".join("/" + p for p in parts)


_MESSAGES = {
    "extra_forbidden": "unknown field; remove it",
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "enum": None,  # pydantic's text lists the allowed values
}


def validation_errors(exc: ValidationError, *, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Pydantic errors as [{pointer, detail}], never echoing the input back."""
    items = []
    for error in exc.errors(include_input=False, include_url=False):
        detail = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        items.append({"pointer": json_pointer(prefix + tuple(error["loc"])), "detail": detail})
    return items


def _allowed_methods(exc: sanic_exceptions.MethodNotAllowed, request: Request | None) -> set[str]:
    # sanic-routing names no methods for a path with parameters (/v1/categories/<slug>): ask the router.
    if exc.allowed_methods or request is None:
        return set(exc.allowed_methods or ())
    allowed: set[str] = set()
    for method in map(str, HTTP_METHODS):
        try:
            request.app.router.get(request.path, method, request.headers.get("host"))
        except sanic_exceptions.SanicException:
            continue
        allowed.add(method)
    return allowed


def _from_sanic(exc: sanic_exceptions.SanicException, request: Request | None = None) -> CatalogError:
    if isinstance(exc, sanic_exceptions.NotFound):
        return NotFound("No route matches this path")
    if isinstance(exc, sanic_exceptions.MethodNotAllowed):
        allowed = ", ".join(sorted(_allowed_methods(exc, request)))
        return MethodNotAllowed(f"Allowed: {allowed}", headers={"Allow": allowed})
    if isinstance(exc, sanic_exceptions.PayloadTooLarge):
        return PayloadTooLarge("The body exceeds the request size limit")
    error = CatalogError(str(exc) if exc.quiet else None)
    error.status = exc.status_code  # type: ignore[misc]
    error.slug = "bad-request" if 400 <= exc.status_code < 500 else "internal-error"  # type: ignore[misc]
    error.title = sanic_exceptions.STATUS_CODES.get(exc.status_code, b"Error").decode()  # type: ignore[misc]
    return error


def to_catalog_error(exc: BaseException, request: Request | None = None) -> CatalogError:
    if isinstance(exc, CatalogError):
        return exc
    if is_database_down(exc):
        return DatabaseUnavailable(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, sanic_exceptions.ServiceUnavailable):
        # Sanic's response timeout (CATALOG_REQUEST_TIMEOUT_SECONDS) cancelled the handler.
        return ResponseTimeout(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, sanic_exceptions.SanicException) and exc.status_code < 500:
        return _from_sanic(exc, request)
    return CatalogError()


def render_problem(request: Request | None, error: CatalogError) -> HTTPResponse:
    body: dict[str, Any] = {
        "type": problem_type(error.slug),
        "title": error.title,
        "status": error.status,
    }
    if error.detail:
        body["detail"] = error.detail
    if request is not None:
        body["instance"] = request.path
        body["request_id"] = getattr(request.ctx, "request_id", None)
        body["trace_id"] = getattr(request.ctx, "trace_id", None)
    if error.errors:
        body["errors"] = error.errors
    body.update(error.extensions)
    return json(body, status=error.status, headers=error.headers, content_type=PROBLEM_JSON)


def handle_exception(request: Request | None, exc: Exception) -> HTTPResponse:
    """Sanic's one error handler. Log lines carry the request id from the logging context."""
    error = to_catalog_error(exc, request)
    if isinstance(error, DatabaseUnavailable):
        if request is not None:
            request.app.ctx.metrics.db_errors.inc()
        log.warning("database unavailable: %r", exc)
    elif error.status >= 500 and not isinstance(error, Draining):
        log.error("unhandled error", exc_info=exc)
    return render_problem(request, error)


def register_error_handlers(app: Sanic) -> None:
    app.error_handler.add(Exception, handle_exception)

    @app.get("/problems/<slug:slug>", name="problem_type")
    async def describe_problem(request: Request, slug: str) -> HTTPResponse:
        """What a problem type means. 200, or 404 problem+json."""
        kind = _problem_types().get(slug)
        if kind is None:
            raise NotFound("No such problem type")
        return json({"type": problem_type(slug), "title": kind.title, "status": kind.status})
