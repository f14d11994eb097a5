"""Route declarations: each /v1 handler carries an Operation (the models it reads and answers with,
the headers it reads and sends, every status and problem type it can answer). catalog.openapi builds
the document from them and the handler's docstring lists the same statuses, so the two cannot
disagree with each other or with the routes the app serves."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from sanic import Sanic

from catalog.errors import (
    CatalogError,
    DatabaseUnavailable,
    InsufficientScope,
    InvalidParameter,
    MalformedJson,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from catalog.observability.tracing import route_template

Handler = TypeVar("Handler", bound=Callable[..., Any])

# Every /v1 route answers these (auth middleware; any database call).
EVERY_ROUTE_ERRORS: tuple[type[CatalogError], ...] = (Unauthenticated, InsufficientScope, DatabaseUnavailable)
# A route that reads a JSON body (catalog.http.parse_body) answers these too.
BODY_ERRORS: tuple[type[CatalogError], ...] = (MalformedJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
QUERY_ERRORS: tuple[type[CatalogError], ...] = (InvalidParameter,)


@dataclass(frozen=True)
class Header:
    """A request header an operation reads, and the statuses it can answer because of it."""

    name: str
    description: str
    required: bool = False
    errors: tuple[type[CatalogError], ...] = ()
    answers: tuple[int, ...] = ()  # successes besides the operation's own, e.g. 304 (same headers)
    # The value's schema, as strict as the server's own check, so a client or fuzzer is not misled.
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"}, compare=False, hash=False)


@dataclass(frozen=True)
class ResponseHeader:
    name: str
    required: bool = True


@dataclass(frozen=True)
class Operation:
    summary: str
    ok: int
    out: type[BaseModel] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    headers: tuple[Header, ...]
    sends: tuple[ResponseHeader, ...]
    errors: tuple[type[CatalogError], ...]

    def successes(self) -> tuple[int, ...]:
        return (self.ok, *(status for header in self.headers for status in header.answers))

    def errors_by_status(self) -> dict[int, list[type[CatalogError]]]:
        grouped: dict[int, list[type[CatalogError]]] = {}
        for kind in self.errors:
            if kind not in grouped.setdefault(kind.status, []):
                grouped[kind.status].append(kind)
        return dict(sorted(grouped.items()))

    def describe(self) -> str:
        """The statuses in one line, for the handler's docstring."""
        ok = f"{self.ok} {self.out.__name__}" if self.out else str(self.ok)
        if self.sends:
            ok += " with " + ", ".join(header.name for header in self.sends)
        answers = [ok, *(str(status) for status in self.successes()[1:])]
        for status, kinds in self.errors_by_status().items():
            answers.append(f"{status} " + ", ".join(kind.slug for kind in kinds))
        return "Answers " + "; ".join(answers) + "."


# Handler -> its declaration, filled by @operation when the views are imported.
_DECLARED: dict[Callable[..., Any], Operation] = {}


def operation(
    ok: int,
    *,
    out: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: tuple[Header, ...] = (),
    sends: tuple[ResponseHeader, ...] = (),
    errors: tuple[type[CatalogError], ...] = (),
) -> Callable[[Handler], Handler]:
    """Declare what a /v1 handler reads and answers; the summary is its docstring's first line."""

    def declare(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip()
        declared = Operation(
            summary=doc.splitlines()[0].rstrip(".") if doc else handler.__name__,
            ok=ok,
            out=out,
            body=body,
            query=query,
            headers=headers,
            sends=sends,
            errors=(
                *EVERY_ROUTE_ERRORS,
                *(QUERY_ERRORS if query else ()),
                *(BODY_ERRORS if body else ()),
                *(kind for header in headers for kind in header.errors),
                *errors,
            ),
        )
        _DECLARED[handler] = declared
        handler.__doc__ = f"{doc}\n\n{declared.describe()}"
        return handler

    return declare


def declared_operations(app: Sanic) -> Iterable[tuple[str, str, Operation, dict[str, str]]]:
    """(OpenAPI path, method, operation, {path parameter: Sanic type}) for every declared route."""
    for route in sorted(app.router.routes, key=lambda route: route.path):
        declared = _DECLARED.get(route.handler)
        if declared is None:
            continue
        parameters = {param.name: param.label for param in route.defined_params.values()}
        for method in sorted(route.methods):
            yield route_template(route.path), method, declared, parameters
