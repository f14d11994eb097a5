"""Per-request middleware: request id, server span, access log line and HTTP metrics."""

from __future__ import annotations

import logging
import time

from opentelemetry import context, trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from catalog.observability.logging import choose_request_id, request_id_var
from catalog.observability.tracing import route_template

access_log = logging.getLogger("catalog.access")
_tracer = trace.get_tracer("catalog.http")
REQUEST_ID_HEADER = "X-Request-ID"


def _route(request: Request) -> str:
    return route_template(request.route.path) if request.route else "unmatched"


async def begin_request(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    request.ctx.request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
    request.ctx.subject = None
    request_id_var.set(request.ctx.request_id)
    route = _route(request)
    span = _tracer.start_span(
        f"{request.method} {route}",
        context=extract(dict(request.headers)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route, "url.path": request.path},
    )
    request.ctx.span = span
    request.ctx.trace_id = format(span.get_span_context().trace_id, "032x")
    request.ctx.context_token = context.attach(trace.set_span_in_context(span))
    request.app.ctx.metrics.in_flight.inc()


async def end_request(request: Request, response: HTTPResponse) -> None:
    span = getattr(request.ctx, "span", None)
    if span is None:  # the request failed before begin_request ran (e.g. a malformed head)
        return
    response.headers[REQUEST_ID_HEADER] = request.ctx.request_id
    route = _route(request)
    duration = time.perf_counter() - request.ctx.started
    metrics = request.app.ctx.metrics
    metrics.in_flight.dec()
    metrics.request_duration.labels(request.method, route, str(response.status)).observe(duration)
    span.set_attribute("http.response.status_code", response.status)
    if response.status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(duration * 1000, 2),
            "subject": request.ctx.subject,
        },
    )
    span.end()
    context.detach(request.ctx.context_token)
    request.ctx.span = None


def install_request_observers(app: Sanic) -> None:
    app.register_middleware(begin_request, "request", priority=100)
    # Sanic's stubs expect response middleware to return a response; None keeps the one it has.
    app.register_middleware(end_request, "response", priority=100)  # type: ignore[arg-type]
