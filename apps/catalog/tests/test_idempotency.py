"""Idempotency-Key on POST /v1/products: a retry replays the first response, a reused key with
another body is refused, keys belong to one token subject, and concurrent retries create one product."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalog.products.models import IdempotencyRecord
from tests.support.api import assert_problem, served
from tests.support.tokens import auth, make_token

BODY = {"sku": "LAMP-7", "name": "Reading lamp", "category": "lamps", "price": "24.50", "currency": "EUR", "stock": 2}


async def post(client: Any, key: str | bytes, body: dict[str, Any] | bytes = BODY, token: str | None = None) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**auth(token), "Content-Type": "application/json", "Idempotency-Key": key}
    _, response = await client.post("/v1/products", content=content, headers=headers)
    return response


async def products(client: Any) -> list[dict[str, Any]]:
    _, response = await client.get("/v1/products", headers=auth())
    return response.json["items"]


@pytest.mark.parametrize(
    "retry",
    [
        pytest.param(json.dumps(BODY).encode(), id="identical"),
        pytest.param(json.dumps(dict(reversed(BODY.items())), indent=2).encode(), id="reordered-and-spaced"),
    ],
)
async def test_create_product_same_key_replays(client, category, retry):
    first = await post(client, "order-1")

    second = await post(client, "order-1", retry)

    assert first.status == 201, first.text
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (second.status, second.json, second.headers["Location"], second.headers["ETag"]) == (
        first.status,
        first.json,
        first.headers["Location"],
        first.headers["ETag"],
    )
    assert [p["id"] for p in await products(client)] == [first.json["id"]]


async def test_create_product_reused_key_other_body_refused(client, category):
    first = await post(client, "order-1")

    response = await post(client, "order-1", {**BODY, "sku": "LAMP-8"})

    assert_problem(response, 422, "idempotency-key-reused")
    assert [p["id"] for p in await products(client)] == [first.json["id"]]


async def test_create_product_refused_leaves_key_unused(client, category):
    """A creation refused inside the key's transaction (an unknown category fails the INSERT itself)
    stores nothing, so the key still creates once the body is right."""
    refused = await post(client, "order-1", {**BODY, "category": "ghost"})

    created = await post(client, "order-1")

    problem = assert_problem(refused, 422, "validation-error")
    assert [error["pointer"] for error in problem["errors"]] == ["/category"]
    assert created.status == 201, created.text
    assert created.headers["Idempotent-Replayed"] == "false"
    assert [p["id"] for p in await products(client)] == [created.json["id"]]


async def test_create_product_same_key_other_subject_is_separate(client, category):
    alice = await post(client, "order-1", token=make_token(sub="alice"))

    bob = await post(client, "order-1", {**BODY, "sku": "LAMP-8"}, token=make_token(sub="bob"))

    assert (alice.status, bob.status) == (201, 201), bob.text
    assert bob.headers["Idempotent-Replayed"] == "false"
    assert bob.json["id"] != alice.json["id"]
    assert sorted(p["id"] for p in await products(client)) == sorted([alice.json["id"], bob.json["id"]])


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 300, id="300-chars"),
        pytest.param("k" * 201, id="201-chars"),
        pytest.param("clé-1".encode(), id="non-ascii"),
        pytest.param("two words", id="space"),
        pytest.param("", id="empty"),
    ],
)
async def test_create_product_bad_key_rejected(client, category, key):
    response = await post(client, key)

    assert_problem(response, 400, "bad-request")
    assert await products(client) == []


async def test_create_product_longest_key_accepted(client, category):
    response = await post(client, "k" * 200)

    assert response.status == 201, response.text


async def test_create_product_concurrent_same_key_creates_one(app, client, category):
    headers = auth(**{"Idempotency-Key": "order-1"})

    async with served(app, client) as request:
        responses = await asyncio.gather(
            *(request("POST", "/v1/products", json=BODY, headers=headers) for _ in range(5))
        )

    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["Location"] for r in responses}) == 1
    assert [p["id"] for p in await products(client)] == [responses[0].json()["id"]]


@pytest.mark.parametrize(
    ("age", "status"),
    [
        pytest.param(timedelta(hours=23), 422, id="remembered-within-24h"),
        pytest.param(timedelta(hours=25), 201, id="forgotten-after-24h"),
    ],
)
async def test_create_product_key_retention(app, client, category, age, status):
    await post(client, "order-9")
    async with served(app, client):
        await IdempotencyRecord.filter(key="order-9").update(created_at=datetime.now(UTC) - age)

    retry = await post(client, "order-9", {**BODY, "sku": "LAMP-8"})

    assert retry.status == status, retry.text
    assert len(await products(client)) == (2 if status == 201 else 1)
