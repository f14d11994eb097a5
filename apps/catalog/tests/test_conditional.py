"""ETag, If-None-Match and If-Match on products: 304, 428, 412 and lost updates prevented."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.api import assert_problem
from tests.support.tokens import auth


def write(method: str, product: dict[str, Any]) -> dict[str, Any] | None:
    """A valid body for each write method; the change is visible in the product afterwards."""
    if method == "PATCH":
        return {"name": "Renamed lamp"}
    if method == "PUT":
        keys = ("sku", "description", "category", "price", "currency", "status")
        return {**{k: product[k] for k in keys}, "name": "Replaced lamp"}
    return None


async def get(client: Any, product_id: str, **headers: str) -> Any:
    _, response = await client.get(f"/v1/products/{product_id}", headers=auth(**headers))
    return response


async def test_get_product_etag_names_version(client, product):
    response = await get(client, product["id"])

    assert response.status == 200
    assert response.headers["ETag"] == f'"v{product["version"]}"'


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        pytest.param("{etag}", 304, id="same"),
        pytest.param("W/{etag}", 304, id="weak-same"),
        pytest.param('"v999", {etag}', 304, id="listed"),
        pytest.param("*", 304, id="star"),
        pytest.param('"v999"', 200, id="different"),
        pytest.param('"garbage"', 200, id="garbage"),
    ],
)
async def test_get_product_if_none_match(client, product, if_none_match, status):
    etag = (await get(client, product["id"])).headers["ETag"]

    response = await get(client, product["id"], **{"If-None-Match": if_none_match.format(etag=etag)})

    assert response.status == status
    assert response.headers["ETag"] == etag
    if status == 304:
        assert response.content == b""
    else:
        assert response.json == product


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
async def test_write_product_without_if_match_requires_precondition(client, product, method):
    _, response = await client.request(
        method, f"/v1/products/{product['id']}", json=write(method, product), headers=auth()
    )

    assert_problem(response, 428, "precondition-required")
    assert (await get(client, product["id"])).json == product


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("if_match", ['"v1"', '"garbage"'])
async def test_write_product_stale_if_match_fails(client, product, method, if_match):
    _, moved_on = await client.patch(
        f"/v1/products/{product['id']}", json={"description": "Changed meanwhile"}, headers=auth(**{"If-Match": '"v1"'})
    )
    assert moved_on.status == 200

    _, response = await client.request(
        method, f"/v1/products/{product['id']}", json=write(method, product), headers=auth(**{"If-Match": if_match})
    )

    assert_problem(response, 412, "precondition-failed")
    assert (await get(client, product["id"])).json == moved_on.json


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("if_match", ["current", "*"])
async def test_write_product_matching_if_match_bumps_version(client, product, method, if_match):
    current = await get(client, product["id"])
    header = current.headers["ETag"] if if_match == "current" else if_match

    _, response = await client.request(
        method, f"/v1/products/{product['id']}", json=write(method, product), headers=auth(**{"If-Match": header})
    )

    assert response.status == 200, response.text
    assert response.json["version"] == product["version"] + 1
    assert response.headers["ETag"] == f'"v{product["version"] + 1}"' != current.headers["ETag"]
    assert response.json["name"] == write(method, product)["name"]
    assert (await get(client, product["id"])).json == response.json


@pytest.mark.parametrize("if_match", ["current", "*"])
async def test_delete_product_matching_if_match_removes_it(client, product, if_match):
    header = (await get(client, product["id"])).headers["ETag"] if if_match == "current" else if_match

    _, response = await client.delete(f"/v1/products/{product['id']}", headers=auth(**{"If-Match": header}))

    assert response.status == 204
    assert_problem(await get(client, product["id"]), 404, "product-not-found")


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("if_match", ['"v1"', "*"])
async def test_write_product_missing_is_not_found(client, product, method, if_match):
    _, response = await client.request(
        method, f"/v1/products/{uuid.uuid4()}", json=write(method, product), headers=auth(**{"If-Match": if_match})
    )

    assert_problem(response, 404, "product-not-found")


async def test_stock_adjustment_makes_etag_stale(client, product):
    etag = (await get(client, product["id"])).headers["ETag"]
    _, adjusted = await client.post(
        f"/v1/products/{product['id']}/stock", json={"delta": 1, "reason": "count"}, headers=auth()
    )
    assert adjusted.status == 201

    _, response = await client.patch(
        f"/v1/products/{product['id']}", json={"name": "Too late"}, headers=auth(**{"If-Match": etag})
    )

    assert_problem(response, 412, "precondition-failed")
    after = await get(client, product["id"])
    assert after.json["name"] == product["name"]
    assert after.json["version"] == product["version"] + 1
    assert after.headers["ETag"] != etag
