"""Hostile input on both engines: every case is a 4xx problem naming what is wrong, with no
traceback in the log and the stored data unchanged."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from tests.support.api import assert_problem
from tests.support.tokens import auth

# 10,000 levels in 20 KB: far below the body limit, far past the JSON parser's recursion limit.
DEEP_JSON = "[" * 10_000 + "]" * 10_000
JSON = "application/json"


@pytest.fixture
def no_traceback(caplog: pytest.LogCaptureFixture):
    """After the test: nothing was logged at ERROR and no record carries a traceback."""
    caplog.set_level(logging.INFO)
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def _snapshot(client: Any, product: dict[str, Any]) -> tuple[Any, ...]:
    _, got = await client.get(f"/v1/products/{product['id']}", headers=auth())
    _, movements = await client.get(f"/v1/products/{product['id']}/stock-movements", headers=auth())
    _, listed = await client.get("/v1/products", headers=auth())
    _, categories = await client.get("/v1/categories", headers=auth())
    return got.json, movements.json, listed.json, categories.json


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/v1/categories", id="create-category"),
        pytest.param("PATCH", "/v1/categories/lamps", id="update-category"),
        pytest.param("POST", "/v1/products", id="create-product"),
        pytest.param("PUT", "/v1/products/{id}", id="replace-product"),
        pytest.param("PATCH", "/v1/products/{id}", id="update-product"),
        pytest.param("POST", "/v1/products/{id}/stock", id="adjust-stock"),
    ],
)
async def test_deeply_nested_json_is_malformed(client, product, no_traceback, method: str, path: str):
    before = await _snapshot(client, product)
    headers = auth(**{"Content-Type": JSON, "If-Match": '"v1"', "Idempotency-Key": "deep-1"})

    _, response = await getattr(client, method.lower())(
        path.format(id=product["id"]), content=DEEP_JSON, headers=headers
    )

    body = assert_problem(response, 400, "malformed-json")
    assert body["detail"] == "The JSON is nested too deeply"
    assert await _snapshot(client, product) == before


def _cursor(**fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


SOME_UUID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        pytest.param("/v1/products?sort=price", _cursor(s="price", v="abc", id=SOME_UUID), id="price-text"),
        pytest.param("/v1/products?sort=price", _cursor(s="price", v=None, id=SOME_UUID), id="price-null"),
        pytest.param("/v1/products?sort=price", _cursor(s="price", v={}, id=SOME_UUID), id="price-object"),
        pytest.param("/v1/products?sort=price", _cursor(s="price", v=True, id=SOME_UUID), id="price-bool"),
        pytest.param("/v1/products?sort=price", _cursor(s="price", v=1.5, id=SOME_UUID), id="price-float"),
        pytest.param(
            "/v1/products?sort=price",
            base64.urlsafe_b64encode(b'{"s":"price","v":1e400,"id":"%s"}' % SOME_UUID.encode()).decode(),
            id="price-1e400",
        ),
        pytest.param("/v1/products?sort=price", _cursor(s="price", v=2**70, id=SOME_UUID), id="price-2**70"),
        pytest.param("/v1/products?sort=name", _cursor(s="name", v="Lamp", id="not-a-uuid"), id="name-bad-id"),
        pytest.param("/v1/products?sort=name", _cursor(s="name", v="La\x00mp", id=SOME_UUID), id="name-nul"),
        pytest.param("/v1/products?sort=name", _cursor(s="name", v=["Lamp"], id=SOME_UUID), id="name-list"),
        pytest.param(
            "/v1/products?sort=created_at", _cursor(s="created_at", v="2026-01-01T00:00:00", id=SOME_UUID), id="naive"
        ),
        pytest.param("/v1/products?sort=created_at", _cursor(s="created_at", v=5, id=SOME_UUID), id="created-int"),
        pytest.param("/v1/products/{id}/stock-movements", _cursor(s="id", v=2**70, id="1"), id="movement-2**70"),
        pytest.param(
            "/v1/products/{id}/stock-movements",
            base64.urlsafe_b64encode(b'{"s":"id","v":1e400,"id":"1"}').decode(),
            id="movement-1e400",
        ),
        pytest.param("/v1/products/{id}/stock-movements", _cursor(s="id", v="7", id="7"), id="movement-text"),
    ],
)
async def test_hand_made_cursor_is_invalid(client, product, no_traceback, path: str, cursor: str):
    separator = "&" if "?" in path else "?"

    _, response = await client.get(f"{path.format(id=product['id'])}{separator}cursor={cursor}", headers=auth())

    assert_problem(response, 400, "invalid-cursor")


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        pytest.param('"v1"', 200, id="current"),
        pytest.param('"v2", "v1"', 200, id="current-in-a-list"),
        pytest.param('W/"v1"', 412, id="weak-never-matches"),
        pytest.param('"v01"', 412, id="other-spelling"),
        pytest.param('"v' + "9" * 5000 + '"', 412, id="5000-digits"),
        pytest.param('"v2147483648"', 412, id="beyond-the-column"),
        pytest.param('"v-1"', 412, id="negative"),
        pytest.param("v1", 412, id="unquoted"),
    ],
)
async def test_if_match_uses_the_strong_comparison(client, product, no_traceback, if_match: str, status: int):
    before = await _snapshot(client, product)
    path = f"/v1/products/{product['id']}"

    _, response = await client.patch(path, json={"name": "Renamed"}, headers=auth(**{"If-Match": if_match}))

    if status == 412:
        assert_problem(response, 412, "precondition-failed")
        assert await _snapshot(client, product) == before
    else:
        assert response.status == 200, response.text
        assert response.json["name"] == "Renamed"


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"),
    [
        pytest.param("POST", "/v1/categories", {"slug": "nul", "name": "N\x00"}, "/name", id="category-name"),
        pytest.param(
            "POST", "/v1/categories", {"slug": "nul", "name": "N", "description": "\x00"}, "/description", id="cat-desc"
        ),
        pytest.param("PATCH", "/v1/categories/lamps", {"name": "\x00"}, "/name", id="category-rename"),
        pytest.param("PATCH", "/v1/products/{id}", {"name": "Desk\x00lamp"}, "/name", id="product-name"),
        pytest.param("PATCH", "/v1/products/{id}", {"description": "a\x00"}, "/description", id="product-desc"),
        pytest.param(
            "POST", "/v1/products/{id}/stock", {"delta": 1, "reason": "re\x00stock"}, "/reason", id="stock-reason"
        ),
    ],
)
async def test_nul_character_is_refused_on_both_engines(client, product, no_traceback, method, path, body, pointer):
    before = await _snapshot(client, product)

    send = getattr(client, method.lower())
    _, response = await send(path.format(id=product["id"]), json=body, headers=auth(**{"If-Match": '"v1"'}))

    problem = assert_problem(response, 422, "validation-error")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert "NUL" in problem["errors"][0]["detail"]
    assert await _snapshot(client, product) == before


async def test_nul_character_in_the_text_filter_is_refused(client, product, no_traceback):
    _, response = await client.get("/v1/products?q=lamp%00", headers=auth())

    problem = assert_problem(response, 400, "invalid-parameter")
    assert [e["parameter"] for e in problem["errors"]] == ["q"]
