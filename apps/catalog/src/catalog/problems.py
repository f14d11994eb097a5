"""RFC 9457 problem+json: the Problem model every error response is rendered through, the
translation of any exception (Sanic's, the database driver's, a bug) into a CatalogError, Sanic's
one error handler and the /problems/<slug> route that describes each problem type."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sanic import Request, Sanic
from sanic import exceptions as sanic_exceptions
from sanic.constants import HTTP_METHODS
from sanic.response import HTTPResponse

from catalog.db_engines.faults import is_database_down
from catalog.errors import (
    CatalogError,
    DatabaseUnavailable,
    Draining,
    HeadersTooLarge,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ResponseTimeout,
)

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("catalog.problems")


class FieldError(BaseModel):
    """One invalid input: a body field (`pointer`, RFC 6901) or a query `parameter`."""

    pointer: str | None = None
    parameter: str | None = None
    detail: str


class Problem(BaseModel):
    """RFC 9457 members plus ours; a problem type may add its own (e.g. `stock`). Members that
    were never set are left out; request_id and trace_id are null when unknown."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    errors: list[FieldError] | None = None


def problem_types(root: type[CatalogError] = CatalogError) -> dict[str, type[CatalogError]]:
    """Every error class by slug, found from the hierarchy so a new class cannot be forgotten."""
    found = {root.slug: root}
    for kind in root.__subclasses__():
        found.update(problem_types(kind))
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


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{pointer, detail}], never echoing the input back."""
    items = []
    for error in exc.errors(include_input=False, include_url=False):
        detail = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        items.append({"pointer": json_pointer(tuple(error["loc"])), "detail": detail})
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


def _before_the_head(request: Request | None) -> bool:
    """Sanic failed before it had parsed a request head. Its HTTP/1 parser raises the body's
    PayloadTooLarge for a head over the limit too, and then hands the error handler a placeholder
    request with no head; a body is only read once the head has been parsed."""
    return request is not None and not request.head


def _from_sanic(exc: sanic_exceptions.SanicException, request: Request | None = None) -> CatalogError:
    if isinstance(exc, sanic_exceptions.NotFound):
        return NotFound("No route matches this path")
    if isinstance(exc, sanic_exceptions.MethodNotAllowed):
        allowed = ", ".join(sorted(_allowed_methods(exc, request)))
        return MethodNotAllowed(f"Allowed: {allowed}", headers={"Allow": allowed})
    if isinstance(exc, sanic_exceptions.PayloadTooLarge):
        if _before_the_head(request):
            return HeadersTooLarge("The request headers exceed the size limit")
        return PayloadTooLarge("The body exceeds the request size limit")
    error = CatalogError(str(exc) if exc.quiet else None)
    error.status = exc.status_code
    error.slug = "bad-request" if 400 <= exc.status_code < 500 else "internal-error"
    error.title = sanic_exceptions.STATUS_CODES.get(exc.status_code, b"Error").decode()
    return error


def to_catalog_error(exc: BaseException, request: Request | None = None) -> CatalogError:
    if isinstance(exc, CatalogError):
        return exc
    if is_database_down(exc):
        return DatabaseUnavailable()
    if isinstance(exc, sanic_exceptions.ServiceUnavailable):
        # Sanic's response timeout (CATALOG_REQUEST_TIMEOUT_SECONDS) cancelled the handler.
        return ResponseTimeout()
    if isinstance(exc, sanic_exceptions.SanicException) and exc.status_code < 500:
        return _from_sanic(exc, request)
    return CatalogError()


def render_problem(request: Request | None, error: CatalogError) -> HTTPResponse:
    members: dict[str, Any] = {"type": problem_type(error.slug), "title": error.title, "status": error.status}
    if error.detail:
        members["detail"] = error.detail
    if request is not None:
        members["instance"] = request.path
        members["request_id"] = getattr(request.ctx, "request_id", None)
        members["trace_id"] = getattr(request.ctx, "trace_id", None)
    if error.errors:
        members["errors"] = error.errors
    members.update(error.extensions)
    body = Problem.model_validate(members).model_dump_json(exclude_unset=True)
    return HTTPResponse(body, status=error.status, headers=error.headers, content_type=PROBLEM_JSON)


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


async def describe_problem(request: Request, slug: str) -> HTTPResponse:
    """What a problem type means. 200 with its type, title and status; 404 problem+json."""
    kind = problem_types().get(slug)
    if kind is None:
        raise NotFound("No such problem type")
    described = Problem(type=problem_type(slug), title=kind.title, status=kind.status)
    return HTTPResponse(described.model_dump_json(exclude_unset=True), content_type="application/json")


def register_error_handlers(app: Sanic) -> None:
    app.error_handler.add(Exception, handle_exception)
    app.add_route(describe_problem, "/problems/<slug:slug>", methods=["GET"])
