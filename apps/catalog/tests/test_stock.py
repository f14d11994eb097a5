"""POST /v1/products/{id}/stock: atomic adjustments, the ledger they leave, refusals that change
nothing, and the adjustments counter on /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from catalog.products.schemas import MAX_STOCK
from tests.support.api import assert_problem
from tests.support.tokens import auth, make_token


async def adjust(client: Any, product_id: str, body: dict[str, Any], token: str | None = None) -> Any:
    _, response = await client.post(f"/v1/products/{product_id}/stock", json=body, headers=auth(token))
    return response


async def state(client: Any, product_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The product and its whole ledger."""
    _, product = await client.get(f"/v1/products/{product_id}", headers=auth())
    _, movements = await client.get(f"/v1/products/{product_id}/stock-movements?limit=100", headers=auth())
    return product.json, movements.json["items"]


@pytest.mark.parametrize(
    "delta",
    [
        pytest.param(lambda stock: 5, id="add"),
        pytest.param(lambda stock: -1, id="take-one"),
        pytest.param(lambda stock: -stock, id="take-all"),
        pytest.param(lambda stock: 1_000_000, id="largest-add"),
    ],
)
async def test_adjust_stock_applies_delta(client, product, delta: Callable[[int], int]):
    amount = delta(product["stock"])
    _, ledger_before = await state(client, product["id"])

    response = await adjust(
        client, product["id"], {"delta": amount, "reason": "recount"}, make_token(sub="stock-clerk")
    )

    assert response.status == 201, response.text
    assert response.json["resulting_stock"] == product["stock"] + amount
    after, ledger = await state(client, product["id"])
    assert after["stock"] == product["stock"] + amount
    assert after["version"] == product["version"] + 1
    assert ledger == [*ledger_before, response.json]
    assert {k: response.json[k] for k in ("delta", "reason", "actor")} == {
        "delta": amount,
        "reason": "recount",
        "actor": "stock-clerk",
    }


@pytest.mark.parametrize(
    "delta",
    [
        pytest.param(lambda stock: -(stock + 1), id="one-below-zero"),
        pytest.param(lambda stock: -1_000_000, id="largest-take"),
    ],
)
async def test_adjust_stock_below_zero_changes_nothing(client, product, delta: Callable[[int], int]):
    before = await state(client, product["id"])

    response = await adjust(client, product["id"], {"delta": delta(product["stock"]), "reason": "sale"})

    body = assert_problem(response, 409, "insufficient-stock")
    assert body["stock"] == product["stock"]
    assert await state(client, product["id"]) == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        pytest.param({"delta": 0, "reason": "noop"}, "/delta", id="zero"),
        pytest.param({"delta": 1_000_001, "reason": "huge"}, "/delta", id="over-million"),
        pytest.param({"delta": -1_000_001, "reason": "huge"}, "/delta", id="under-minus-million"),
        pytest.param({"delta": "5", "reason": "text"}, "/delta", id="delta-string"),
        pytest.param({"delta": 1.5, "reason": "half"}, "/delta", id="delta-fraction"),
        pytest.param({"delta": True, "reason": "bool"}, "/delta", id="delta-bool"),
        pytest.param({"reason": "none"}, "/delta", id="delta-missing"),
        pytest.param({"delta": 1}, "/reason", id="reason-missing"),
        pytest.param({"delta": 1, "reason": ""}, "/reason", id="reason-empty"),
        pytest.param({"delta": 1, "reason": "x", "actor": "mallory"}, "/actor", id="actor-not-settable"),
    ],
)
async def test_adjust_stock_rejects_bad_body(client, product, body, pointer):
    before = await state(client, product["id"])

    response = await adjust(client, product["id"], body)

    problem = assert_problem(response, 422, "validation-error")
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    assert await state(client, product["id"]) == before


async def test_adjust_stock_above_maximum_changes_nothing(client, product):
    body = {"sku": "FULL-1", "name": "Full shelf", "category": product["category"], "price": "1.00",
            "currency": "EUR", "stock": MAX_STOCK}  # fmt: skip
    _, created = await client.post("/v1/products", json=body, headers=auth())
    assert created.status == 201, created.text
    before = await state(client, created.json["id"])

    response = await adjust(client, created.json["id"], {"delta": 1, "reason": "delivery"})

    problem = assert_problem(response, 409, "insufficient-stock")
    assert problem["stock"] == MAX_STOCK
    assert await state(client, created.json["id"]) == before


@pytest.mark.parametrize("delta", [pytest.param(1, id="add"), pytest.param(-1, id="take")])
async def test_adjust_stock_unknown_product_not_found(client, product, delta):
    response = await adjust(client, str(uuid.uuid4()), {"delta": delta, "reason": "ghost"})

    assert_problem(response, 404, "product-not-found")


async def test_stock_movements_unknown_product_not_found(client):
    _, response = await client.get(f"/v1/products/{uuid.uuid4()}/stock-movements", headers=auth())

    assert_problem(response, 404, "product-not-found")


async def test_stock_movements_record_each_adjustment(client, product):
    steps = [("alice", 4, "delivery"), ("bob", -3, "sale"), ("alice", -7, "sale"), ("carol", 10, "return")]
    for subject, delta, reason in steps:
        await adjust(client, product["id"], {"delta": delta, "reason": reason}, make_token(sub=subject))

    _, ledger = await state(client, product["id"])

    expected, stock = [], product["stock"]
    for subject, delta, reason in steps:
        if stock + delta >= 0:
            stock += delta
            expected.append({"actor": subject, "delta": delta, "reason": reason, "resulting_stock": stock})
    initial = {
        "actor": "alice",
        "delta": product["stock"],
        "reason": "initial stock",
        "resulting_stock": product["stock"],
    }
    assert [{k: m[k] for k in initial} for m in ledger] == [initial, *expected]
    assert len(expected) == len(steps) - 1  # alice's -7 (stock 6) was refused and left no movement


def counter(text: str, outcome: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "catalog_stock_adjustments_total" and sample.labels == {"outcome": outcome}:
                return sample.value
    return 0.0


async def test_metrics_count_stock_adjustment_outcomes(client, product):
    outcomes = {"applied": 0, "insufficient": 0}
    for delta in (2, -100, -3, 1, -100, -100):
        response = await adjust(client, product["id"], {"delta": delta, "reason": "count"})
        outcomes["applied" if response.status == 201 else "insufficient"] += 1
    await adjust(client, product["id"], {"delta": 0, "reason": "refused before counting"})
    await adjust(client, str(uuid.uuid4()), {"delta": 1, "reason": "no such product"})

    _, response = await client.get("/metrics")

    assert response.status == 200
    assert outcomes == {"applied": 3, "insufficient": 3}
    assert {o: counter(response.text, o) for o in outcomes} == outcomes


async def test_adjust_stock_takes_an_integral_json_number(client, product):
    """JSON has one number type: -2.0 is the integer -2 (as JSON Schema says), 1.5 is not one."""
    response = await adjust(client, product["id"], {"delta": -2.0, "reason": "integral"})

    assert response.status == 201, response.text
    assert response.json["delta"] == -2
    assert response.json["resulting_stock"] == product["stock"] - 2
