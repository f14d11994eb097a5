"""OpenTelemetry: one tracer provider per process; OTLP export only when an endpoint is set."""

from __future__ import annotations

import re
from functools import lru_cache

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from catalog import __version__

_ROUTE_PARAM = re.compile(r"<([^:>]+)(?::[^>]*)?>")


@lru_cache(maxsize=1024)  # one entry per route: the regex ran on every request
def route_template(sanic_path: str) -> str:
    """Sanic's `v1/products/<product_id:uuid>` as `/v1/products/{product_id}`."""
    return "/" + _ROUTE_PARAM.sub(r"{\1}", sanic_path).lstrip("/")


def configure_tracing(service_name: str, otlp_endpoint: str | None) -> None:
    """Install the process-wide provider once; later calls (a second app in tests) keep it."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.version": __version__}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def shutdown_tracing() -> bool:
    """Flush spans still queued for export (graceful shutdown); False if that did not finish."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider.force_flush(timeout_millis=2000)
    return True
