"""In-process observability: server and DB spans, W3C traceparent, metrics and readiness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from tests.support.tokens import auth

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans(app) -> Iterator[InMemorySpanExporter]:
    """Spans finished during the test (the app installs the process-wide provider)."""
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_request_span_named_by_route_with_db_children(client, product, spans) -> None:
    spans.clear()
    _, response = await client.get(f"/v1/products/{product['id']}", headers=auth())

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    db = [s for s in finished if s.name.startswith("db ")]
    assert response.status == 200
    assert [s.name for s in server] == ["GET /v1/products/{product_id}"]
    assert [s.name for s in db] == ["db SELECT"]  # the point read is one statement
    assert all(s.parent is not None and s.parent.span_id == server[0].context.span_id for s in db)
    assert server[0].attributes["http.response.status_code"] == 200


@pytest.mark.parametrize("header", ["traceparent", "Traceparent", "TRACEPARENT"])
async def test_traceparent_continues_the_callers_trace(client, spans, header: str) -> None:
    headers = {header: f"00-{TRACE_ID}-00f067aa0ba902b7-01"}

    _, response = await client.get("/v1/products/not-a-uuid", headers=headers)

    assert response.json["trace_id"] == TRACE_ID
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert format(server.context.trace_id, "032x") == TRACE_ID


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        pytest.param("req-42.a_b:c", True, id="sane"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("bad id", False, id="space"),
        pytest.param('"><script>', False, id="markup"),
    ],
)
async def test_request_id_reused_only_when_sane(client, sent: str, echoed: bool) -> None:
    _, response = await client.get("/v1/products", headers={"X-Request-ID": sent})

    assert (response.headers["x-request-id"] == sent) is echoed
    assert response.json["request_id"] == response.headers["x-request-id"]


async def test_metrics_count_requests_by_route_template(client, product) -> None:
    for _ in range(3):
        await client.get(f"/v1/products/{product['id']}", headers=auth())
    await client.get("/v1/products/00000000-0000-0000-0000-000000000000", headers=auth())

    _, response = await client.get("/metrics")

    counts = _samples(response.text, "catalog_http_request_duration_seconds_count")
    route = ("route", "/v1/products/{product_id}")
    assert counts[(("method", "GET"), route, ("status", "200"))] == 3
    assert counts[(("method", "GET"), route, ("status", "404"))] == 1
    assert _samples(response.text, "catalog_http_requests_in_flight") == {(): 1.0}  # the scrape itself


async def test_readyz_reports_database_and_draining(app, client) -> None:
    _, ready = await client.get("/readyz")
    app.ctx.draining = True
    _, draining = await client.get("/readyz")
    _, live = await client.get("/livez")

    assert ready.status == 200
    assert draining.status == 503
    assert draining.json["type"] == "/problems/draining"
    assert draining.headers["retry-after"] == "5"
    assert live.status == 200
