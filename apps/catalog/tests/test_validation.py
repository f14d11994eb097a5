"""Request bodies: every bad input is an RFC 9457 problem that points at the field and never echoes
the input; good inputs are created with Location and ETag; conflicts and routing errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from catalog.money import MINOR_UNITS
from tests.support.api import assert_problem
from tests.support.tokens import auth

PLANTED = "planted<value>"  # a string the response must never repeat
NEW_PRODUCT = {
    "sku": "LAMP-2",
    "name": "Floor lamp",
    "description": "Tall",
    "category": "lamps",
    "price": "49.90",
    "currency": "EUR",
    "stock": 3,
    "status": "active",
}
NEW_CATEGORY = {"slug": "desks", "name": "Desks", "description": "Tables to work at"}


def assert_points_at(body: dict[str, Any], pointer: str) -> None:
    """Exactly one error, on this field, with a message."""
    assert [error["pointer"] for error in body["errors"]] == [pointer]
    assert body["errors"][0]["detail"]


def with_fields(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied; a value of ... removes the field."""
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v is not ...}


def sent_strings(changes: dict[str, Any]) -> list[str]:
    return [v for v in changes.values() if isinstance(v, str) and len(v) >= 4]


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        pytest.param({"bogus": PLANTED}, "/bogus", id="unknown-field"),
        *(
            pytest.param({f: PLANTED}, f"/{f}", id=f"server-owned-{f}")
            for f in ("id", "version", "created_at", "updated_at")
        ),
        pytest.param({"price": 19.9}, "/price", id="price-json-number"),
        pytest.param({"price": "19.999"}, "/price", id="eur-three-decimals"),
        pytest.param({"price": "1500.5", "currency": "JPY"}, "/price", id="jpy-one-decimal"),
        pytest.param({"price": "1500.00", "currency": "JPY"}, "/price", id="jpy-two-zero-decimals"),
        pytest.param({"price": "1.2345", "currency": "BHD"}, "/price", id="bhd-four-decimals"),
        pytest.param({"price": "-1.00"}, "/price", id="negative-price"),
        pytest.param({"price": "1e3"}, "/price", id="exponent-price"),
        pytest.param({"price": ...}, "/price", id="missing-price"),
        pytest.param({"currency": "XYZ"}, "/currency", id="unknown-currency"),
        pytest.param({"currency": "eur"}, "/currency", id="lowercase-currency"),
        pytest.param({"stock": -1}, "/stock", id="negative-stock"),
        pytest.param({"stock": "5"}, "/stock", id="stock-as-string"),
        pytest.param({"sku": ""}, "/sku", id="empty-sku"),
        pytest.param({"sku": "has space<"}, "/sku", id="bad-sku"),
        pytest.param({"name": ...}, "/name", id="missing-name"),
        pytest.param({"status": "sold"}, "/status", id="unknown-status"),
        pytest.param({"category": "Not A Slug"}, "/category", id="bad-slug"),
        pytest.param({"category": "ghost-category"}, "/category", id="unknown-category"),
    ],
)
async def test_create_product_rejects_bad_field(client, category, changes, pointer):
    _, response = await client.post("/v1/products", json=with_fields(NEW_PRODUCT, changes), headers=auth())

    body = assert_problem(response, 422, "validation-error")
    assert_points_at(body, pointer)
    for value in sent_strings(changes):
        assert value not in response.text


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        pytest.param({"bogus": PLANTED}, "/bogus", id="unknown-field"),
        pytest.param({"created_at": PLANTED}, "/created_at", id="server-owned-created_at"),
        pytest.param({"slug": "Bad_Slug"}, "/slug", id="bad-slug"),
        pytest.param({"slug": "double--hyphen"}, "/slug", id="double-hyphen-slug"),
        pytest.param({"slug": ...}, "/slug", id="missing-slug"),
        pytest.param({"name": ""}, "/name", id="empty-name"),
    ],
)
async def test_create_category_rejects_bad_field(client, changes, pointer):
    _, response = await client.post("/v1/categories", json=with_fields(NEW_CATEGORY, changes), headers=auth())

    body = assert_problem(response, 422, "validation-error")
    assert_points_at(body, pointer)
    for value in sent_strings(changes):
        assert value not in response.text


@pytest.mark.parametrize("path", ["/v1/products", "/v1/categories"])
@pytest.mark.parametrize(
    ("content", "content_type", "status", "slug"),
    [
        pytest.param(b'{"sku": "A-1",', "application/json", 400, "malformed-json", id="truncated-json"),
        pytest.param(b"\xff\xfe", "application/json", 400, "malformed-json", id="not-utf8"),
        pytest.param(b"", "application/json", 400, "malformed-json", id="empty-body"),
        pytest.param(b'["a", "b"]', "application/json", 422, "validation-error", id="json-array"),
        pytest.param(b'"text"', "application/json", 422, "validation-error", id="json-string"),
        pytest.param(b'{"sku": "A-1"}', "text/plain", 415, "unsupported-media-type", id="text-plain"),
    ],
)
async def test_create_rejects_bad_body(client, path, content, content_type, status, slug):
    _, response = await client.post(path, content=content, headers=auth(**{"Content-Type": content_type}))

    assert_problem(response, status, slug)


def test_create_product_body_over_limit_is_problem(app):
    """Sanic enforces REQUEST_MAX_SIZE in its HTTP server (not over ASGI): use the real server."""
    oversized = b'{"description": "' + b"x" * app.ctx.settings.request_max_bytes + b'"}'

    _, response = app.test_client.post(
        "/v1/products", content=oversized, headers=auth(**{"Content-Type": "application/json"})
    )

    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("method", "body", "pointer", "detail"),
    [
        pytest.param("PATCH", {"stock": 7}, "/stock", "POST /v1/products/{id}/stock", id="patch-stock"),
        pytest.param("PUT", {"stock": 7}, "/stock", "POST /v1/products/{id}/stock", id="put-stock"),
        pytest.param("PATCH", {"name": None}, "/name", "null", id="patch-null"),
        pytest.param("PATCH", {}, "", "at least one", id="patch-empty"),
        pytest.param("PATCH", {"version": 9}, "/version", "server", id="patch-version"),
        pytest.param("PATCH", {"price": "1.001"}, "/price", "decimal places", id="patch-price-decimals"),
        pytest.param("PATCH", {"currency": "JPY"}, "/price", "decimal places", id="patch-currency-keeps-cents"),
    ],
)
async def test_update_product_rejects_bad_body(client, product, method, body, pointer, detail):
    if method == "PUT":
        body = {**{k: product[k] for k in NEW_PRODUCT if k != "stock"}, **body}

    _, response = await client.request(
        method, f"/v1/products/{product['id']}", json=body, headers=auth(**{"If-Match": "*"})
    )

    problem = assert_problem(response, 422, "validation-error")
    # PATCH {"stock": 7} also reports that nothing else is left to change: only `pointer` is checked.
    assert any(detail in error["detail"] for error in problem["errors"] if error["pointer"] == pointer)
    _, after = await client.get(f"/v1/products/{product['id']}", headers=auth())
    assert after.json == product


@pytest.mark.parametrize(
    ("currency", "price"),
    [
        pytest.param("JPY", "1500", id="jpy-whole"),
        pytest.param("EUR", "19.9", id="eur-one-decimal"),
        pytest.param("EUR", "0", id="eur-zero"),
        pytest.param("BHD", "1.5", id="bhd-one-decimal"),
        pytest.param("BHD", "12.345", id="bhd-three-decimals"),
        pytest.param("USD", "999999999999.99", id="usd-largest"),
    ],
)
async def test_create_product_formats_price_for_currency(client, category, currency, price):
    body = {**NEW_PRODUCT, "currency": currency, "price": price}

    _, response = await client.post("/v1/products", json=body, headers=auth())

    assert response.status == 201, response.text
    formatted = response.json["price"]
    assert Decimal(formatted) == Decimal(price)
    decimals = formatted.partition(".")[2]
    assert len(decimals) == MINOR_UNITS[currency]


async def test_create_product_returns_location_and_etag(client, category):
    _, created = await client.post("/v1/products", json=NEW_PRODUCT, headers=auth())

    assert created.status == 201, created.text
    assert created.headers["Location"] == f"/v1/products/{created.json['id']}"
    assert created.headers["ETag"] == f'"v{created.json["version"]}"'
    assert {k: created.json[k] for k in NEW_PRODUCT} == NEW_PRODUCT
    _, fetched = await client.get(created.headers["Location"], headers=auth())
    assert fetched.json == created.json


async def test_create_category_returns_location(client):
    _, created = await client.post("/v1/categories", json=NEW_CATEGORY, headers=auth())

    assert created.status == 201, created.text
    assert {k: created.json[k] for k in NEW_CATEGORY} == NEW_CATEGORY
    _, fetched = await client.get(created.headers["Location"], headers=auth())
    assert fetched.json == created.json


@pytest.mark.parametrize(
    ("path", "body", "slug"),
    [
        pytest.param("/v1/products", {**NEW_PRODUCT, "sku": "LAMP-1"}, "sku-conflict", id="duplicate-sku"),
        pytest.param("/v1/categories", {"slug": "lamps", "name": "Other"}, "category-conflict", id="duplicate-slug"),
    ],
)
async def test_create_duplicate_conflicts(client, product, path, body, slug):
    _, before = await client.get(path, headers=auth())

    _, response = await client.post(path, json=body, headers=auth())

    assert_problem(response, 409, slug)
    _, after = await client.get(path, headers=auth())
    assert after.json == before.json


async def test_create_product_unknown_category_reported_before_taken_sku(client, product):
    _, response = await client.post(
        "/v1/products", json={**NEW_PRODUCT, "sku": product["sku"], "category": "ghost"}, headers=auth()
    )

    assert_points_at(assert_problem(response, 422, "validation-error"), "/category")


async def test_update_product_duplicate_sku_conflicts(client, product):
    _, other = await client.post("/v1/products", json=NEW_PRODUCT, headers=auth())

    _, response = await client.patch(
        f"/v1/products/{other.json['id']}",
        json={"sku": product["sku"]},
        headers=auth(**{"If-Match": other.headers["ETag"]}),
    )

    assert_problem(response, 409, "sku-conflict")


async def test_delete_category_in_use_conflicts(client, product):
    _, response = await client.delete(f"/v1/categories/{product['category']}", headers=auth())

    body = assert_problem(response, 409, "category-in-use")
    assert body["products"] == 1
    _, still = await client.get(f"/v1/categories/{product['category']}", headers=auth())
    assert still.status == 200


async def test_delete_category_unused_removes_it(client, category):
    _, deleted = await client.delete(f"/v1/categories/{category['slug']}", headers=auth())
    _, gone = await client.get(f"/v1/categories/{category['slug']}", headers=auth())

    assert deleted.status == 204
    assert_problem(gone, 404, "category-not-found")


@pytest.mark.parametrize(
    ("method", "path", "status", "slug", "allowed"),
    [
        pytest.param("GET", "/v1/nothing-here", 404, "not-found", None, id="unknown-route"),
        pytest.param("GET", "/v1/products/not-a-uuid", 404, "not-found", None, id="bad-uuid"),
        pytest.param(
            "GET",
            "/v1/products/00000000-0000-4000-8000-000000000000",
            404,
            "product-not-found",
            None,
            id="unknown-product",
        ),
        pytest.param("GET", "/v1/categories/ghost", 404, "category-not-found", None, id="unknown-category"),
        pytest.param(
            "DELETE",
            "/v1/products",
            405,
            "method-not-allowed",
            {"GET", "HEAD", "OPTIONS", "POST"},
            id="delete-collection",
        ),
        pytest.param(
            "PUT",
            "/v1/categories/lamps",
            405,
            "method-not-allowed",
            {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"},
            id="put-category",
        ),
    ],
)
async def test_routing_errors_are_problems(client, method, path, status, slug, allowed):
    _, response = await client.request(method, path, headers=auth())

    assert_problem(response, status, slug)
    if allowed is not None:
        listed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert listed == allowed
