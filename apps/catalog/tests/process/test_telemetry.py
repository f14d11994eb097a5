"""Logs and traces of the real process: JSON access lines with ids, spans at a real OTLP receiver."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.otlp import OtlpReceiver
from tests.support.process_tier import PRODUCT_ROUTE, create_product, migrated_sqlite_url, server_env, traceparent
from tests.support.server import ServerProcess
from tests.support.tokens import auth

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def log_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    """One server (SQLite, one worker) and a product, shared by the read-only logging cases."""
    directory = tmp_path_factory.mktemp("log-server")
    server = ServerProcess(server_env(migrated_sqlite_url(directory), directory / "metrics"))
    with server:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            product = create_product(client, stock=3)
        yield server, product


@pytest.mark.parametrize(
    ("sent_request_id", "echoed"),
    [
        pytest.param("abc-123", True, id="sane-id-echoed"),
        pytest.param("a" * 300, False, id="too-long-id-replaced"),
        pytest.param('abc 123"; drop', False, id="id-with-space-and-quote-replaced"),
        pytest.param(None, False, id="no-id-generated"),
    ],
)
def test_access_log_line_describes_request(
    log_server: tuple[ServerProcess, dict[str, Any]], sent_request_id: str | None, echoed: bool
) -> None:
    server, product = log_server
    trace_id, header = traceparent()
    headers = auth(traceparent=header)
    if sent_request_id is not None:
        headers["X-Request-ID"] = sent_request_id
    first_line = len(server.stdout)

    began = time.perf_counter()
    response = httpx.get(f"{server.url}/v1/products/{product['id']}", headers=headers, timeout=10)
    round_trip_ms = (time.perf_counter() - began) * 1000

    request_id = response.headers["x-request-id"]
    line = server.wait_for_record(lambda r: r["logger"] == "catalog.access" and r["request_id"] == request_id)
    assert response.status_code == 200
    if echoed:
        assert request_id == sent_request_id
    else:
        assert request_id != sent_request_id
        assert re.fullmatch("[0-9a-f]{32}", request_id)
    assert {k: line[k] for k in ("method", "route", "status", "trace_id", "subject")} == {
        "method": "GET",
        "route": PRODUCT_ROUTE,
        "status": 200,
        "trace_id": trace_id,
        "subject": "alice",
    }
    # The server's own measure of the request: a database read takes time, all of it inside the round trip.
    assert isinstance(line["duration_ms"], float)
    assert 0 < line["duration_ms"] <= round_trip_ms
    assert all(isinstance(json.loads(raw), dict) for raw in server.stdout[first_line:])


def test_problem_body_carries_client_trace_id(log_server: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, _ = log_server
    trace_id, header = traceparent()
    missing = "00000000-0000-4000-8000-000000000000"

    response = httpx.get(f"{server.url}/v1/products/{missing}", headers=auth(traceparent=header), timeout=10)

    body = response.json()
    line = server.wait_for_record(lambda r: r["logger"] == "catalog.access" and r["request_id"] == body["request_id"])
    assert response.status_code == 404
    assert body["type"].endswith("/product-not-found")
    assert body["trace_id"] == trace_id
    assert body["request_id"] == response.headers["x-request-id"]
    assert (line["route"], line["status"], line["trace_id"]) == (PRODUCT_ROUTE, 404, trace_id)


@pytest.mark.parametrize(
    ("endpoint_variable", "exported"),
    [
        pytest.param("OTEL_EXPORTER_OTLP_ENDPOINT", True, id="endpoint-set"),
        # The app's setting is unset; the SDK's own variable points at the receiver, so an exporter
        # made with defaults would send there.
        pytest.param("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", False, id="endpoint-unset"),
    ],
)
def test_serve_exports_spans_only_to_configured_endpoint(
    serve: Callable[..., ServerProcess],
    sqlite_url: str,
    otlp_receiver: OtlpReceiver,
    endpoint_variable: str,
    exported: bool,
) -> None:
    target = otlp_receiver.url + ("" if exported else "/v1/traces")
    server = serve(sqlite_url, OTEL_SERVICE_NAME="catalog-process-test", **{endpoint_variable: target})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        product = create_product(client, stock=1)
        assert client.get(f"/v1/products/{product['id']}", headers=auth()).status_code == 200

    assert server.stop() == 0  # spans still queued are flushed on the way out

    spans = otlp_receiver.spans()
    if not exported:
        assert otlp_receiver.bodies == []
        return
    servers = [s for _, s in spans if s.name == f"GET {PRODUCT_ROUTE}" and s.kind == Span.SpanKind.SPAN_KIND_SERVER]
    assert len(servers) == 1
    request_span = servers[0]
    queries = [
        s
        for _, s in spans
        if s.name == "db SELECT" and s.trace_id == request_span.trace_id and s.parent_span_id == request_span.span_id
    ]
    # A product read is one query (the product joined with its category's slug), a child of the request.
    assert len(queries) == 1, [s.name for _, s in spans]
    assert {resource["service.name"] for resource, _ in spans} == {"catalog-process-test"}
