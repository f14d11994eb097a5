"""Every exception becomes an RFC 9457 problem; a database that cannot be reached is 503, never 500."""

from __future__ import annotations

import pytest
from sanic import exceptions as sanic_exceptions
from tortoise.exceptions import DBConnectionError, OperationalError

from catalog.problems import to_catalog_error


@pytest.mark.parametrize(
    ("exc", "status", "slug"),
    [
        pytest.param(ConnectionRefusedError(111, "refused"), 503, "database-unavailable", id="refused"),
        pytest.param(DBConnectionError("gone"), 503, "database-unavailable", id="tortoise-connection"),
        pytest.param(TimeoutError(), 503, "database-unavailable", id="timeout"),
        pytest.param(OperationalError("syntax"), 500, "internal-error", id="sql-bug-is-ours"),
        pytest.param(ValueError("bug"), 500, "internal-error", id="bug"),
        pytest.param(sanic_exceptions.NotFound("x"), 404, "not-found", id="no-route"),
        pytest.param(sanic_exceptions.PayloadTooLarge("x"), 413, "payload-too-large", id="too-large"),
        pytest.param(
            sanic_exceptions.PayloadTooLarge("Request header exceeds the size limit"),
            431,
            "headers-too-large",
            id="head-too-large",
        ),
        pytest.param(sanic_exceptions.RequestTimeout("x"), 408, "bad-request", id="request-timeout"),
        pytest.param(
            sanic_exceptions.ServiceUnavailable("Response Timeout"), 503, "response-timeout", id="response-timeout"
        ),
    ],
)
def test_to_catalog_error_maps_status_and_type(exc: Exception, status: int, slug: str) -> None:
    error = to_catalog_error(exc)

    assert (error.status, error.slug) == (status, slug)
    assert ("Retry-After" in error.headers) is (status == 503)


async def test_problem_types_are_described(client):
    _, known = await client.get("/problems/sku-conflict")
    _, unknown = await client.get("/problems/nope")

    assert known.status == 200
    assert known.content_type == "application/json"
    assert known.json == {
        "type": "/problems/sku-conflict",
        "title": "A product with this SKU already exists",
        "status": 409,
    }
    assert unknown.status == 404
    assert unknown.content_type == "application/problem+json"
