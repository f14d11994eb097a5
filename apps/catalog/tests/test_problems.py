"""Every exception becomes an RFC 9457 problem; a database that cannot be reached is 503, never 500."""

from __future__ import annotations

import pytest
from sanic import Request
from sanic import exceptions as sanic_exceptions
from sanic.compat import Header
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


def _request(head: bytes) -> Request:
    """A request as Sanic's HTTP/1 parser hands it to the error handler: with the head it parsed,
    or its placeholder (no head) when it failed before it had one."""
    return Request(b"/v1/categories", Header({}), "1.1", "POST" if head else "NONE", None, None, head=head)


@pytest.mark.parametrize(
    ("message", "head", "status", "slug"),
    [
        pytest.param(
            "Request body exceeds the size limit", b"POST /v1/categories HTTP/1.1", 413, "payload-too-large", id="body"
        ),
        pytest.param("Request header exceeds the size limit", b"", 431, "headers-too-large", id="head"),
        # Which limit was hit is where Sanic raised it, whatever its message says.
        pytest.param("Payload Too Large", b"", 431, "headers-too-large", id="head-reworded"),
        pytest.param(
            "Request header exceeds the size limit", b"GET / HTTP/1.1", 413, "payload-too-large", id="body-reworded"
        ),
    ],
)
def test_to_catalog_error_tells_the_head_limit_from_the_body_limit(
    message: str, head: bytes, status: int, slug: str
) -> None:
    error = to_catalog_error(sanic_exceptions.PayloadTooLarge(message), _request(head))

    assert (error.status, error.slug) == (status, slug)


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
